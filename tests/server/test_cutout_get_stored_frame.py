"""A cutout GET of exactly one stored cuboid is answered with the stored chunk's own blosc frame; every
other GET (part of a cuboid, several cuboids, several time samples, filter=, never written, a chunk the
wire cannot take as it is) decodes and encodes, and all of them return the voxels that were written."""
from __future__ import annotations

import json

import blosc
import numpy as np
import pytest
import requests
from fixtures_server import make_channel
from intern.remote.boss import BossRemote

from ndex.geometry import Box
from ndex.server.layout import ChannelLayout
from ndex.server.volumes import VolumeStore

EXTENT = (1100, 600, 40)  # x and y are not multiples of 512: the last cuboids are clipped
RNG = np.random.default_rng(11)


def values(dtype: str, shape) -> np.ndarray:
    return RNG.integers(1, 200, size=shape, endpoint=True).astype(dtype)


def url(server, tc, ranges: str, query: str = "") -> str:
    return f"{server.url}/v1/cutout/{tc.path}/0/{ranges}/" + (f"?{query}" if query else "")


def post(server, tc, ranges: str, data: np.ndarray) -> None:
    r = requests.post(url(server, tc, ranges), headers=server.headers, timeout=30,
                      data=blosc.compress(data.tobytes(), typesize=data.itemsize, cname="zstd", clevel=3))
    assert r.status_code == 201, r.text


def get_body(server, tc, ranges: str, query: str = "") -> bytes:
    r = requests.get(url(server, tc, ranges, query), headers=server.headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/blosc"
    return r.content


def get(server, tc, ranges: str, dtype: str, shape, query: str = "") -> np.ndarray:
    return np.frombuffer(blosc.decompress(get_body(server, tc, ranges, query)), dtype=dtype).reshape(shape)


def chunk_file(server, tc, t: int, zyx: tuple[int, int, int]) -> bytes:
    """The stored chunk (level 0) of the test channel, read from the data directory."""
    for group in (server.data_dir / "store").glob("*/zarr.json"):
        names = json.loads(group.read_text())["attributes"]["ndex"]
        if (names["collection"], names["experiment"], names["channel"]) == (tc.collection, tc.experiment, tc.channel):
            return (group.parent / "0" / "c" / str(t)).joinpath(*map(str, zyx)).read_bytes()
    raise AssertionError(f"no stored group for {tc.path}")


@pytest.fixture(scope="module", params=["uint8", "uint16", "uint64"])
def written(request, server_app):
    """A channel with one full cuboid (x 512:1024, y 0:512, z 16:32) written at t=1, and its voxels."""
    kind = "annotation" if request.param == "uint64" else "image"
    tc = make_channel(server_app, datatype=request.param, kind=kind, extent=EXTENT, time_samples=3)
    data = values(request.param, (16, 512, 512))
    post(server_app, tc, "512:1024/0:512/16:32/1:2", data[None])
    return tc, data


def test_a_whole_cuboid_is_served_as_its_stored_frame(server_app, written):
    tc, data = written
    body = get_body(server_app, tc, "512:1024/0:512/16:32/1:2")
    assert body == chunk_file(server_app, tc, 1, (1, 0, 1))  # the chunk, byte for byte: nothing re-encoded
    assert body[:2] == bytes([2, 1]) and body[3] == data.itemsize  # a blosc-1 frame, as intern expects
    assert np.array_equal(np.frombuffer(blosc.decompress(body), tc.datatype).reshape(1, 16, 512, 512)[0], data)


def test_intern_reads_the_stored_frame_3d_and_4d(server_app, written):
    tc, data = written
    rmt = BossRemote(server_app.intern_config())
    chan = rmt.get_channel(tc.channel, tc.collection, tc.experiment)
    got = rmt.get_cutout(chan, 0, [512, 1024], [0, 512], [16, 32], time_range=[1, 2])
    assert got.dtype == np.dtype(tc.datatype) and np.array_equal(got[0], data)


@pytest.mark.parametrize("ranges, pick", [
    ("600:1000/100:400/18:30/1:2", np.s_[:, 2:14, 100:400, 88:488]),  # part of the cuboid
    ("0:1100/0:600/0:40/0:3", np.s_[1:2, 16:32, 0:512, 512:1024]),  # several cuboids and times
])
def test_other_boxes_decode_and_encode_the_same_voxels(server_app, written, ranges, pick):
    tc, data = written
    x, y, z, t = ([int(v) for v in r.split(":")] for r in ranges.split("/"))
    shape = (t[1] - t[0], z[1] - z[0], y[1] - y[0], x[1] - x[0])
    whole = np.zeros((3, 40, 600, 1100), dtype=tc.datatype)
    whole[1, 16:32, 0:512, 512:1024] = data
    got = get(server_app, tc, ranges, tc.datatype, shape)
    assert np.array_equal(got, whole[t[0]:t[1], z[0]:z[1], y[0]:y[1], x[0]:x[1]])
    assert got[pick].any()


def test_a_never_written_cuboid_and_the_clipped_edge_cuboid_read_as_zeros(server_app, written):
    tc, _ = written
    assert not get(server_app, tc, "0:512/0:512/0:16", tc.datatype, (16, 512, 512)).any()
    assert not get(server_app, tc, "1024:1100/512:600/16:32/1:2", tc.datatype, (1, 16, 88, 76)).any()


def test_a_merge_write_shows_in_the_next_whole_cuboid_get(server_app, written):
    tc, data = written
    patch = np.zeros((1, 16, 512, 512), dtype=tc.datatype)
    patch[0, 3:5, 10:20, 30:40] = 7  # zeros keep the stored voxels, the rest replaces them
    post(server_app, tc, "512:1024/0:512/16:32/2:3", data[None])
    post(server_app, tc, "512:1024/0:512/16:32/2:3", patch)
    expected = data.copy()
    expected[3:5, 10:20, 30:40] = 7
    assert np.array_equal(get(server_app, tc, "512:1024/0:512/16:32/2:3", tc.datatype, (1, 16, 512, 512))[0],
                          expected)


def test_filter_on_a_whole_cuboid_filters(server_app):
    tc = make_channel(server_app, datatype="uint64", kind="annotation", extent=(512, 512, 16))
    labels = np.zeros((16, 512, 512), dtype=np.uint64)
    labels[:8], labels[8:] = 5, 9
    post(server_app, tc, "0:512/0:512/0:16", labels)
    got = get(server_app, tc, "0:512/0:512/0:16", "uint64", (16, 512, 512), query="filter=9")
    assert not got[:8].any() and (got[8:] == 9).all()


# --- the store's side: when the stored bytes are not a wire body -----------------------------------------


def layout(key: str = "ch1") -> ChannelLayout:
    return ChannelLayout(key=key, dtype="uint16", extent=(1024, 512, 32), time_samples=1, levels=1, z_scaled=())


CUBOID = Box((512, 0, 16), (1024, 512, 32))


def test_stored_frame_only_for_exactly_one_stored_chunk(tmp_path):
    store = VolumeStore(str(tmp_path))
    data = values("uint16", (1, 16, 512, 512))
    store.write(layout(), 0, CUBOID, 0, data)
    frame = store.stored_frame(layout(), 0, CUBOID, 0)
    assert np.array_equal(np.frombuffer(blosc.decompress(frame), np.uint16).reshape(data.shape), data)
    assert store.stored_frame(layout(), 0, Box((512, 0, 16), (1024, 512, 31)), 0) is None  # part of it
    assert store.stored_frame(layout(), 0, Box((256, 0, 16), (768, 512, 32)), 0) is None  # not aligned
    assert store.stored_frame(layout(), 0, Box((0, 0, 0), (512, 512, 16)), 0) is None  # never written
    assert store.stored_frame(layout(), 0, CUBOID, 1) is None  # t = num_time_samples: never written
    assert store.stored_frame(layout("ch2"), 0, CUBOID, 0) is None  # a channel never written


def stored_chunk(tmp_path, contents: bytes) -> VolumeStore:
    """A store whose chunk of CUBOID holds `contents`."""
    store = VolumeStore(str(tmp_path))
    store.write(layout(), 0, CUBOID, 0, values("uint16", (1, 16, 512, 512)))
    chunk = tmp_path / "ch1" / "0" / "c" / "0" / "1" / "0" / "1"
    assert chunk.is_file()
    chunk.write_bytes(contents)
    return store


RAW = np.arange(16 * 512 * 512, dtype=np.uint16).tobytes()


@pytest.mark.parametrize("contents", [b"\x89PNG" + bytes(40), blosc.compress(RAW[:-2], typesize=2)],
                         ids=["not blosc", "wrong size"])
def test_stored_frame_declines_chunks_the_wire_cannot_take(tmp_path, contents):
    assert stored_chunk(tmp_path, contents).stored_frame(layout(), 0, CUBOID, 0) is None


def test_a_frame_with_intern_style_typesize_is_served_as_it_is(tmp_path):
    frame = blosc.compress(RAW, typesize=16)  # intern passes the item size in bits
    assert stored_chunk(tmp_path, frame).stored_frame(layout(), 0, CUBOID, 0) == frame


def test_a_cuboid_intern_posted_comes_back_to_intern(server_app):
    tc = make_channel(server_app, datatype="uint16", extent=(512, 512, 16))
    rmt = BossRemote(server_app.intern_config())
    chan = rmt.get_channel(tc.channel, tc.collection, tc.experiment)
    data = values("uint16", (16, 512, 512))
    rmt.create_cutout(chan, 0, [0, 512], [0, 512], [0, 16], data)
    assert get_body(server_app, tc, "0:512/0:512/0:16") == chunk_file(server_app, tc, 0, (0, 0, 0))
    assert np.array_equal(rmt.get_cutout(chan, 0, [0, 512], [0, 512], [0, 16]), data)
