"""The server's ingest fast path: a posted whole-cuboid frame is stored as the chunk, without a re-encode.

ndpush posts one cuboid per request; when every voxel is non-zero the merge rule says every voxel
replaces, so the store keeps the client's blosc frame as the chunk. These tests pin down when that
happens and that reads (and the merge rule) see exactly what a decode-and-merge would have stored.
"""
from __future__ import annotations

import numpy as np
import pytest

from ndex import codecs
from ndex.geometry import Box
from ndex.server.layout import ChannelLayout
from ndex.server.volumes import VolumeStore

CUBOID = Box((512, 0, 16), (1024, 512, 32))  # one whole chunk (x 512:1024, y 0:512, z 16:32)
CHUNK_KEY = "c/0/1/0/1"  # (t, z, y, x) chunk indices of CUBOID


@pytest.fixture
def store(tmp_path):
    s = VolumeStore(str(tmp_path / "store"), cache_bytes=16 * 2**20, concurrency=1)
    yield s
    s.close()


@pytest.fixture
def layout() -> ChannelLayout:
    return ChannelLayout(key="c1", dtype="uint16", extent=(1100, 600, 40), time_samples=1, levels=1, z_scaled=())


def stored_chunk(store: VolumeStore, layout: ChannelLayout) -> bytes | None:
    found = store.arrays.writer(layout, 0).kvstore.read(CHUNK_KEY).result()
    return bytes(found.value) if found.state == "value" else None


def test_whole_nonzero_cuboid_is_stored_as_the_posted_frame(store, layout):
    data = np.random.default_rng(1).integers(1, 5000, size=(1, 16, 512, 512), dtype=np.uint16)
    frame = codecs.encode(data[0])
    store.write(layout, 0, CUBOID, 0, data, frame=frame)
    assert stored_chunk(store, layout) == frame
    np.testing.assert_array_equal(store.read(layout, 0, CUBOID, (0, 1)), data)
    # a read across the chunk boundary decodes it like any other chunk
    wider = Box((500, 0, 10), (1100, 512, 40))
    out = store.read(layout, 0, wider, (0, 1))[0]
    np.testing.assert_array_equal(out[6:22, :, 12:524], data[0])
    assert not out[:6].any() and not out[22:].any()


def test_frame_over_stored_data_replaces_every_voxel(store, layout):
    rng = np.random.default_rng(2)
    first = rng.integers(1, 100, size=(1, 16, 512, 512), dtype=np.uint16)
    store.write(layout, 0, CUBOID, 0, first)  # stored by the merge path
    second = rng.integers(100, 200, size=(1, 16, 512, 512), dtype=np.uint16)
    store.write(layout, 0, CUBOID, 0, second, frame=codecs.encode(second[0]))
    np.testing.assert_array_equal(store.read(layout, 0, CUBOID, (0, 1)), second)


def test_zeros_in_a_posted_cuboid_still_merge(store, layout):
    rng = np.random.default_rng(3)
    old = rng.integers(1, 100, size=(1, 16, 512, 512), dtype=np.uint16)
    store.write(layout, 0, CUBOID, 0, old, frame=codecs.encode(old[0]))
    new = rng.integers(100, 200, size=(1, 16, 512, 512), dtype=np.uint16)
    new[0, :, :100] = 0  # these keep the stored voxels
    store.write(layout, 0, CUBOID, 0, new, frame=codecs.encode(new[0]))
    expected = np.where(new != 0, new, old)
    np.testing.assert_array_equal(store.read(layout, 0, CUBOID, (0, 1)), expected)
    assert stored_chunk(store, layout) != codecs.encode(new[0])


def test_unaligned_or_partial_boxes_take_the_merge_path(store, layout):
    data = np.full((1, 16, 512, 512), 7, dtype=np.uint16)
    shifted = Box((256, 0, 16), (768, 512, 32))  # a cuboid's size, not on the grid
    store.write(layout, 0, shifted, 0, data, frame=codecs.encode(data[0]))
    np.testing.assert_array_equal(store.read(layout, 0, shifted, (0, 1)), data)
    edge = Box((1024, 512, 32), (1100, 600, 40))  # a partial chunk at the frame's edge
    small = np.full((1, 8, 88, 76), 9, dtype=np.uint16)
    store.write(layout, 0, edge, 0, small, frame=codecs.encode(small[0]))
    np.testing.assert_array_equal(store.read(layout, 0, edge, (0, 1)), small)
