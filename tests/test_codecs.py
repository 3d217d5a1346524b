import blosc
import numpy as np
import pytest

from ndex.codecs import decode, dtype_of, encode, frame_nbytes
from ndex.errors import CorruptBody


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint64"])
def test_round_trip_and_intern_compatibility(dtype):
    data = (np.arange(2 * 3 * 5 * 7) % 251).astype(dtype).reshape(2, 3, 5, 7)
    assert np.array_equal(decode(encode(data), dtype, data.shape), data)
    # what intern sends (typesize in *bits*, default codec) decodes too, and intern can read ours
    intern_body = blosc.compress(data.tobytes(), typesize=np.dtype(dtype).itemsize * 8)
    assert np.array_equal(decode(intern_body, dtype, data.shape), data)
    assert np.frombuffer(blosc.decompress(encode(data)), dtype=dtype).reshape(data.shape).tolist() == data.tolist()


def test_truncated_wrong_size_and_garbage_bodies_are_corrupt():
    data = np.ones((4, 4, 4), np.uint8)
    body = encode(data)
    with pytest.raises(CorruptBody, match="too short"):
        decode(body[:10], "uint8", data.shape)
    with pytest.raises(CorruptBody, match="complete blosc"):
        decode(body[:-1], "uint8", data.shape)
    with pytest.raises(CorruptBody, match="needs"):
        decode(body, "uint16", data.shape)
    with pytest.raises(CorruptBody):
        frame_nbytes(b"\x00" * 40)


def test_unknown_datatype_names_the_choices():
    assert dtype_of("uint16") == np.uint16
    with pytest.raises(ValueError, match="uint8, uint16, uint32, uint64"):
        dtype_of("float32")


@pytest.mark.parametrize("dtype, bitshuffled", [("uint8", False), ("uint16", True), ("uint64", False)])
def test_uint16_is_bit_shuffled_and_every_frame_decodes_with_plain_blosc(dtype, bitshuffled):
    rng = np.random.default_rng(5)
    data = (1000 + rng.integers(0, 400, size=(16, 64, 64))).astype(dtype)  # 12-bit-like values
    body = encode(data)
    flags = body[2]
    assert bool(flags & 0x4) is bitshuffled and bool(flags & 0x1) is not bitshuffled  # blosc-1 header flags
    assert np.array_equal(np.frombuffer(blosc.decompress(body), dtype).reshape(data.shape), data)
