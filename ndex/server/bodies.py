"""The two other cutout encodings BOSS speaks besides raw blosc (boss-api.md 3.3), read safely.

* `application/blosc-python`: `blosc.pack_array(a)`, a blosc frame of `pickle.dumps(a)`. Unpickling
  untrusted bytes can run any code, so these pickles go through an unpickler that knows only the few
  numpy callables an array pickle names (ndarray reconstruction and unsigned-integer dtypes) and
  refuses every other global: a body that is anything but a plain unsigned-integer array is a 400.
* `application/npygz`: zlib (RFC 1950) of an `.npy` file, read with `allow_pickle=False`.

Both decompress into a bounded size (the URL's extent plus a small header allowance), so a small body
cannot inflate into a large allocation. Encoding (for GETs) is the same two steps forwards.
"""
from __future__ import annotations

import io
import pickle
import zlib

import blosc
import numpy as np

from ndex import codecs
from ndex.errors import CorruptBody

BLOSC_PYTHON = "application/blosc-python"
NPYGZ = "application/npygz"
HEADER_ALLOWANCE = 64 * 2**10  # an array pickle's or .npy file's bytes besides the voxels (~100-200 in practice)
_ALLOWED_DTYPES = frozenset({"u1", "u2", "u4", "u8", "<u2", "<u4", "<u8", ">u2", ">u4", ">u8", "|u1"})


class _NdarrayClass:
    """Stands for numpy.ndarray inside a pickle: accepted only as `_reconstruct`'s first argument, never
    called (calling the real class would allocate whatever shape the body asks for)."""


def _reconstruct(cls, shape, typecode) -> np.ndarray:
    if cls is not _NdarrayClass or shape != (0,):
        raise pickle.UnpicklingError("not a plain numpy array pickle")
    return np.ndarray((0,), dtype=np.uint8)  # BUILD then gives it its shape, dtype and data (numpy checks sizes)


def _dtype(spec, align=False, copy=True) -> np.dtype:
    if spec not in _ALLOWED_DTYPES:
        raise pickle.UnpicklingError(f"dtype {spec!r} is not an unsigned integer type")
    return np.dtype(spec, align=False, copy=True)  # a copy: BUILD sets its byte order, never the shared one


def _frombuffer(buf, dtype, shape, order) -> np.ndarray:
    if order not in ("C", "F") or not _sizes_fit(shape, dtype, buf):
        raise pickle.UnpicklingError(f"not a plain numpy array pickle (shape {shape!r}, {len(buf)} bytes)")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _latin1(text, encoding) -> bytes:
    """Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1')."""
    if type(text) is not str or encoding != "latin1":
        raise pickle.UnpicklingError("not a plain numpy array pickle")
    return text.encode("latin1")


_GLOBALS = {
    ("_codecs", "encode"): _latin1,
    **{(m, "_reconstruct"): _reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): _frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): _NdarrayClass,
    ("numpy", "dtype"): _dtype,
}


def _sizes_fit(shape, dtype, data) -> bool:
    return (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
            and isinstance(dtype, np.dtype) and dtype.kind == "u" and dtype.fields is None
            and isinstance(data, bytes | bytearray)
            and int(np.prod(shape, dtype=np.int64)) * dtype.itemsize == len(data))


def _check_state(inst, state) -> None:
    """BUILD may only give our dtype its byte order and our empty array its shape, dtype and data."""
    if isinstance(inst, np.dtype):
        ok = (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", ">", "|", "=")
              and state[2:] == (None, None, None, -1, -1, 0))
    elif type(inst) is np.ndarray and inst.size == 0:
        ok = (isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and state[3] in (False, True)
              and _sizes_fit(state[1], state[2], state[4]))
    else:
        ok = False
    if not ok:
        raise pickle.UnpicklingError("not a plain numpy array pickle")


class _ArrayUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its opcode table can be changed) with globals and BUILD restricted."""

    def find_class(self, module: str, name: str):
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a numpy array pickle") from None

    def load_build(self) -> None:
        state = self.stack.pop()  # type: ignore[attr-defined]  # pickle._Unpickler's, untyped in typeshed
        inst = self.stack[-1]  # type: ignore[attr-defined]
        _check_state(inst, state)
        inst.__setstate__(state)

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}  # type: ignore[dict-item]


def _unpickle_array(raw: bytes) -> np.ndarray:
    try:
        found = _ArrayUnpickler(io.BytesIO(raw)).load()
    except Exception as exc:  # any malformed or foreign pickle: UnpicklingError, ValueError, TypeError, EOFError...
        raise CorruptBody(f"the body is not a pickled numpy array ({exc})") from None
    if type(found) is not np.ndarray:
        raise CorruptBody(f"the body unpickles to {type(found).__name__}, not a numpy array")
    return found


def unpack_array(body: bytes, max_nbytes: int) -> np.ndarray:
    """The array of a `blosc.pack_array` body whose voxels take at most `max_nbytes` bytes."""
    limit = max_nbytes + HEADER_ALLOWANCE
    if codecs.frame_nbytes(body) > limit:
        raise CorruptBody(f"the blosc frame holds more than the URL's extent allows ({limit} bytes)")
    try:
        raw = blosc.decompress(body)
    except Exception as exc:  # blosc raises plain RuntimeError/ValueError on damaged frames
        raise CorruptBody(f"blosc could not decode the body: {exc}") from exc
    return _unpickle_array(raw)


def load_npygz(body: bytes, max_nbytes: int) -> np.ndarray:
    """The array of a zlib-compressed .npy body whose voxels take at most `max_nbytes` bytes."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body, max_nbytes + HEADER_ALLOWANCE)
    except zlib.error as exc:
        raise CorruptBody(f"the body is not a zlib stream ({exc})") from None
    if inflater.unconsumed_tail:
        raise CorruptBody(f"the .npy file holds more than the URL's extent allows ({max_nbytes} bytes of voxels)")
    if not inflater.eof:
        raise CorruptBody("the zlib stream is truncated")
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/... on a malformed .npy
        raise CorruptBody(f"the body is not an .npy file ({exc})") from None


def pack_array(array: np.ndarray) -> bytes:
    """What `blosc.pack_array` makes (our own array, so pickling it is safe)."""
    return blosc.compress(pickle.dumps(np.ascontiguousarray(array), protocol=4), typesize=array.itemsize)


def save_npygz(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return zlib.compress(buf.getvalue())
