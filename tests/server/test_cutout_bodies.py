"""Cutout bodies in BOSS's other two encodings: `application/blosc-python` (blosc.pack_array: a pickled
array, read by an unpickler that refuses everything but a plain unsigned-integer array) and
`application/npygz` (zlib of an .npy file). Posted arrays must read back voxel for voxel; malformed,
foreign or oversized bodies are 400s and write nothing."""
from __future__ import annotations

import io
import os
import pickle
import zlib

import blosc
import numpy as np
import pytest
import requests
from boss_fixtures import boss_channel, cutout_url, own_server, read

from ndex.server.bodies import BLOSC_PYTHON, NPYGZ

STOP = (64, 64, 16)
X, Y, Z = (3, 40), (5, 29), (1, 9)  # unaligned on purpose
SHAPE = (Z[1] - Z[0], Y[1] - Y[0], X[1] - X[0])


def npygz(array: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, **save)
    return zlib.compress(buf.getvalue())


ENCODE = {BLOSC_PYTHON: blosc.pack_array, NPYGZ: npygz}


@pytest.fixture(scope="module")
def admin(tmp_path_factory):
    with own_server(tmp_path_factory.mktemp("bodies")) as w:
        yield w.users["admin"]


def send(server, tc, media: str, body: bytes, t: str = "") -> requests.Response:
    url = cutout_url(server, tc, 0, X, Y, Z) + t
    return requests.post(url, data=body, headers={**server.headers, "Content-Type": media}, timeout=30)


def voxels(dtype: str, shape=SHAPE) -> np.ndarray:
    top = np.iinfo(dtype).max
    rng = np.random.default_rng(7)
    return rng.integers(1, top, size=shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("media", [BLOSC_PYTHON, NPYGZ])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_posted_arrays_read_back_voxel_for_voxel(admin, media, dtype):
    tc = boss_channel(admin, stop=STOP, datatype=dtype)
    data = voxels(dtype)
    assert send(admin, tc, media, ENCODE[media](data)).status_code == 201
    assert np.array_equal(read(admin, tc, 0, X, Y, Z), data)
    r = requests.get(cutout_url(admin, tc, 0, X, Y, Z), headers={**admin.headers, "Accept": media}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == media
    back = blosc.unpack_array(r.content) if media == BLOSC_PYTHON else np.load(io.BytesIO(zlib.decompress(r.content)))
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, data)


@pytest.mark.parametrize("media", [BLOSC_PYTHON, NPYGZ])
def test_4d_bodies_and_other_pickle_protocols(admin, media):
    tc = boss_channel(admin, stop=STOP, datatype="uint16")
    data = voxels("uint16", (1, *SHAPE))
    assert send(admin, tc, media, ENCODE[media](data), t="0:1/").status_code == 201
    assert np.array_equal(read(admin, tc, 0, X, Y, Z), data[0])
    if media == BLOSC_PYTHON:  # BOSS-era clients pickled with protocols 2..4, numpy 2 with 5
        for protocol in (2, 3, 4):
            other = voxels("uint16") // 2 + 1
            body = blosc.compress(pickle.dumps(np.asfortranarray(other), protocol), typesize=2)
            assert send(admin, tc, media, body).status_code == 201
            assert np.array_equal(read(admin, tc, 0, X, Y, Z), other)


class Planted:
    """Unpickling this would create a file: the server must refuse without running it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def bad_bodies(tmp_path):
    good = voxels("uint16")
    marker = str(tmp_path / "planted")
    return marker, {
        "not blosc": (BLOSC_PYTHON, b"\x00" * 64, 2001),
        "truncated blosc": (BLOSC_PYTHON, blosc.pack_array(good)[:-10], 2001),
        "foreign global": (BLOSC_PYTHON, blosc.compress(pickle.dumps(Planted(marker))), 2001),
        "array inside an object": (BLOSC_PYTHON, blosc.compress(pickle.dumps({"a": good})), 2001),
        "object array": (BLOSC_PYTHON, blosc.compress(pickle.dumps(np.array([os.getpid(), "x"], dtype=object))), 2001),
        "float array": (BLOSC_PYTHON, blosc.pack_array(good.astype(np.float32)), 2001),
        "wrong dtype": (BLOSC_PYTHON, blosc.pack_array(good.astype(np.uint8)), 2001),
        "big-endian": (BLOSC_PYTHON, blosc.pack_array(good.astype(">u2")), 2001),
        "wrong shape": (BLOSC_PYTHON, blosc.pack_array(good[:, :, :-1]), 2002),
        "inflates past the extent (pickle)": (BLOSC_PYTHON, blosc.pack_array(np.zeros((200, 200, 200), np.uint16)), 2001),
        "not zlib": (NPYGZ, b"PK\x03\x04 not zlib at all", 2001),
        "truncated zlib": (NPYGZ, npygz(good)[:-20], 2001),
        "zlib of junk": (NPYGZ, zlib.compress(b"junk" * 100), 2001),
        "npy of objects": (NPYGZ, npygz(np.array([Planted(marker)], dtype=object), allow_pickle=True), 2001),
        "inflates past the extent": (NPYGZ, zlib.compress(bytes(50 * 2**20)), 2001),
        "npy wrong shape": (NPYGZ, npygz(good.reshape(-1)), 2002),
        "npy wrong dtype": (NPYGZ, npygz(good.astype(np.uint64)), 2001),
    }


def test_malformed_or_foreign_bodies_are_400_and_write_nothing(admin, tmp_path):
    tc = boss_channel(admin, stop=STOP, datatype="uint16")
    marker, cases = bad_bodies(tmp_path)
    for name, (media, body, code) in cases.items():
        r = send(admin, tc, media, body)
        assert r.status_code == 400 and r.json()["code"] == code, (name, r.text)
    assert not os.path.exists(marker)
    assert not read(admin, tc, 0, X, Y, Z).any()


def test_unknown_media_types_are_still_415(admin):
    tc = boss_channel(admin, stop=STOP)
    r = send(admin, tc, "application/x-tar", b"x")
    assert r.status_code == 415 and "application/npygz" in r.json()["detail"]
