"""render-ws source against the fake server in tests/fixtures_render.py."""
from __future__ import annotations

import numpy as np
import pytest

from ndex.errors import OutOfBounds, SourceError, UsageError
from ndex.sources import SourceSpec, open_source
from ndex.sources.render import RenderClient, RenderSource, api_root, window_to_uint8


def spec(server, **kw):
    fields = dict(datasource="render", render_base_url=server.base_url, render_owner=server.owner,
                  render_project=server.project, render_stack=server.stack, render_tile_size=100, read_threads=3)
    fields.update(kw)
    return SourceSpec(**fields)


def read(source_spec):
    source = open_source(source_spec)
    try:
        return source, source.read_slab(*source.z_range)
    finally:
        source.close()


def test_uint8_at_scale_1_is_the_8_bit_rendering(render_server):
    source, slab = read(spec(render_server))
    assert source.dtype == np.uint8
    assert source.z_range == (3, 9) and source.origin_xy == (100, 40) and source.shape_xy == (230, 150)
    np.testing.assert_array_equal(slab, (render_server.volume >> 8).astype(np.uint8))
    assert all("/png-image" in r for r in render_server.requests[1:])


def test_window_maps_16_bit_to_8_bit_linearly_with_clipping(render_server):
    lo, hi = 10000, 30000
    _, slab = read(spec(render_server, render_window=(lo, hi)))
    volume = render_server.volume.astype(np.float64)
    expected = np.clip(np.floor((volume - lo) * 255 / (hi - lo) + 0.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(slab, expected)
    assert (slab == 0).any() and (slab == 255).any()  # both clips happen on this volume
    assert all("/tiff16-image" in r for r in render_server.requests[1:])


def test_window_to_uint8_end_points():
    image = np.array([0, 100, 150, 200, 65535], dtype=np.uint16)
    np.testing.assert_array_equal(window_to_uint8(image, (100, 200)), [0, 0, 128, 255, 255])


def test_limits_restrict_the_region(render_server):
    source, slab = read(spec(render_server, datatype="uint16", limit_x=(150, 260), limit_y=(60, 100),
                             limit_z=(4, 7)))
    assert source.z_range == (4, 7) and source.origin_xy == (150, 60) and source.shape_xy == (110, 40)
    np.testing.assert_array_equal(slab, render_server.volume[1:4, 20:60, 50:160])


def test_half_scale(render_server):
    source, slab = read(spec(render_server, datatype="uint16", render_scale=0.5, render_tile_size=32))
    assert source.origin_xy == (50, 20) and source.shape_xy == (115, 75)
    np.testing.assert_array_equal(slab, render_server.volume[:, ::2, ::2])


def test_channel_is_passed_through_and_checked(render_server):
    read(spec(render_server, render_channel="GFP", z_range=(5, 6)))
    assert all("channels=GFP" in r for r in render_server.requests[1:])
    with pytest.raises(SourceError, match="no channel 'RFP' .*DAPI, GFP.*--render_channel"):
        open_source(spec(render_server, render_channel="RFP"))


@pytest.mark.parametrize("field", ["render_owner", "render_project", "render_stack"])
def test_unknown_owner_project_or_stack_is_one_line(render_server, field):
    with pytest.raises(SourceError) as info:
        open_source(spec(render_server, **{field: "nope"}))
    message = str(info.value)
    assert "not found" in message and "nope" in message and "HTTP 404" in message and "\n" not in message


def test_limits_outside_the_stack_are_out_of_bounds(render_server):
    with pytest.raises(OutOfBounds, match="--limit_x 0:50 is outside"):
        open_source(spec(render_server, limit_x=(0, 50)))
    with pytest.raises(OutOfBounds, match="z"):
        open_source(spec(render_server, z_range=(0, 5)))


def test_validate_fetches_small_boxes(render_server):
    source = open_source(spec(render_server))
    try:
        source.validate(sample=1)
        assert all(",64,64,1/png-image" in r for r in render_server.requests[1:])
    finally:
        source.close()


def test_server_errors_are_retried(render_server):
    render_server.fail_next = 2
    sleeps = []
    client = RenderClient(render_server.base_url, render_server.owner, render_server.project,
                          render_server.stack, backoff=0.01, sleep=sleeps.append)
    source = RenderSource(spec(render_server, z_range=(3, 4)), client=client)
    try:
        assert source.shape_xy == (230, 150)
        assert sleeps == [0.01, 0.02]
    finally:
        source.close()


def test_a_server_that_keeps_failing_is_a_source_error(render_server):
    render_server.fail_next = 10
    client = RenderClient(render_server.base_url, render_server.owner, render_server.project,
                          render_server.stack, attempts=3, sleep=lambda _: None)
    with pytest.raises(SourceError, match="did not answer .* after 3 attempts"):
        RenderSource(spec(render_server), client=client)


def test_unreachable_server_is_a_source_error():
    client = RenderClient("http://127.0.0.1:9", "o", "p", "s", attempts=2, timeout=2, sleep=lambda _: None)
    with pytest.raises(SourceError, match="127.0.0.1:9"):
        client.metadata()


@pytest.mark.parametrize("kw,message", [
    ({"render_stack": None}, "needs --render_stack"),
    ({"datatype": "uint64"}, "uint8 or uint16"),
    ({"datatype": "uint16", "render_window": (0, 100)}, "--datatype uint8"),
])
def test_impossible_render_specs_are_usage_errors(render_server, kw, message):
    with pytest.raises(UsageError, match=message):
        open_source(spec(render_server, **kw))


def test_api_root_accepts_the_usual_spellings():
    for url in ("http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/render-ws", "http://127.0.0.1:8080/render-ws/v1/"):
        assert api_root(url) == "http://127.0.0.1:8080/render-ws/v1"


def test_a_band_requests_only_the_boxes_it_overlaps(render_server):
    from ndex.geometry import Box

    source = open_source(spec(render_server, datatype="uint16", render_scale=0.5, render_tile_size=32))
    try:
        (x0, y0) = source.origin_xy
        before = len(render_server.requests)
        band = Box((x0 + 40, y0 + 30, 3), (x0 + 70, y0 + 60, 5))
        np.testing.assert_array_equal(source.read(band), render_server.volume[:2, ::2, ::2][:, 30:60, 40:70])
        whole = len(source._boxes())
        assert len(render_server.requests) - before < 2 * whole / 2  # not every box of the slices
    finally:
        source.close()
