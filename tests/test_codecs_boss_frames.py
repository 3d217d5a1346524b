"""Blosc frames as BOSS's pinned python-blosc 1.5 writes them decode in the client and in `ndex serve`.

BOSS's renderer and intern call `blosc.compress(data, typesize=<bit depth>)`: the header's typesize is 8,
16 or 64 (bits, not bytes), the codec blosclz at level 9, byte-shuffled by default; uint16 data is also
seen bit-shuffled. python-blosc 1.5 does not build on current Pythons, so besides frames of the installed
python-blosc with BOSS's arguments, frames are built byte by byte from the blosc-1 header format
(c-blosc's README_HEADER): for data that does not compress, every c-blosc 1.x, 1.5's included, writes the
16-byte header with the MEMCPYED flag followed by the raw bytes.
"""
from __future__ import annotations

import struct

import blosc
import numpy as np
import pytest
import requests

from ndex.client import BossClient, ChannelRef
from ndex.codecs import decode, frame_nbytes

DOSHUFFLE, MEMCPYED, DOBITSHUFFLE = 0x01, 0x02, 0x04  # blosc-1 header flag bits
VERSION_FORMAT, BLOSCLZ_VERSION_FORMAT = 2, 1

CASES = [("uint8", DOSHUFFLE), ("uint16", DOBITSHUFFLE), ("uint64", DOSHUFFLE)]


def volume(dtype: str, shape=(16, 64, 96)) -> np.ndarray:
    top = 2**40 if dtype == "uint64" else np.iinfo(dtype).max
    return np.random.default_rng(5).integers(1, top, size=shape, dtype=np.uint64).astype(dtype)


def memcpyed_frame(data: np.ndarray, shuffle_flag: int) -> bytes:
    """The blosc-1 frame c-blosc 1.x writes when compression does not pay: header + raw little-endian bytes."""
    raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
    typesize = 8 * data.dtype.itemsize  # BOSS and intern pass the bit depth as typesize
    header = struct.pack("<BBBBIII", VERSION_FORMAT, BLOSCLZ_VERSION_FORMAT, shuffle_flag | MEMCPYED, typesize,
                         len(raw), len(raw), len(raw) + 16)
    return header + raw


def boss_compressed_frame(data: np.ndarray, shuffle_flag: int) -> bytes:
    """What BOSS's renderer sends: blosc.compress with typesize = bit depth, python-blosc's defaults."""
    shuffle = blosc.BITSHUFFLE if shuffle_flag == DOBITSHUFFLE else blosc.SHUFFLE
    return blosc.compress(data.tobytes(), typesize=8 * data.dtype.itemsize, shuffle=shuffle)


@pytest.mark.parametrize("dtype, flag", CASES)
def test_hand_built_frames_are_valid_blosc1_and_decode_in_the_client(dtype, flag):
    data = volume(dtype)
    frame = memcpyed_frame(data, flag)
    assert frame[:4] == bytes([2, 1, flag | MEMCPYED, 8 * data.dtype.itemsize])
    assert blosc.decompress(frame) == data.tobytes()  # the reference decoder agrees the frame is well formed
    assert frame_nbytes(frame) == data.nbytes
    assert np.array_equal(decode(frame, dtype, data.shape), data)


@pytest.mark.parametrize("dtype, flag", CASES)
def test_boss_compressed_frames_decode_in_the_client(dtype, flag):
    data = (volume(dtype) % 7).astype(dtype)  # compressible: a real compressed frame, not a memcpyed one
    frame = boss_compressed_frame(data, flag)
    assert frame[2] & MEMCPYED == 0 and frame[2] & flag and frame[3] == 8 * data.dtype.itemsize
    assert np.array_equal(decode(frame, dtype, data.shape), data)


@pytest.mark.parametrize("dtype, flag", CASES)
def test_the_server_stores_boss_frames_as_sent(server_app, dtype, flag):
    from fixtures_server import make_channel

    ch = make_channel(server_app, datatype=dtype, kind="annotation" if dtype == "uint64" else "image",
                      extent=(192, 64, 16))
    ref = ChannelRef(ch.collection, ch.experiment, ch.channel)
    left, right = volume(dtype), (volume(dtype) % 7).astype(dtype)
    for x0, frame in ((0, memcpyed_frame(left, flag)), (96, boss_compressed_frame(right, flag))):
        url = f"{server_app.url}/v1/cutout/{ref.path}/0/{x0}:{x0 + 96}/0:64/0:16/"
        r = requests.post(url, data=frame, headers={**server_app.headers, "Content-Type": "application/blosc"},
                          timeout=30)
        assert r.status_code == 201, r.text
    with BossClient(server_app.remote) as client:
        got = client.get_cutout(ref, 0, client.channel_info(ref).extent_at(0), dtype)
    assert np.array_equal(got[:, :, :96], left) and np.array_equal(got[:, :, 96:], right)
