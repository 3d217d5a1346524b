"""SourceSpec parsing at the edge, and the lazy datasource registry."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ndex.errors import InvalidBox, UsageError
from ndex.sources import SourceSpec, open_source, register
from ndex.sources.base import sample_points
from ndex.sources.registry import REGISTRY


def test_spec_round_trips_through_json():
    spec = SourceSpec(datasource="render", render_base_url="http://127.0.0.1", render_window=[0, 4000], limit_x=[1, 9],
                      rgb_channel="g", tile_size=[256, 128], extension=".png", z_range=(2, 5))
    assert spec.render_window == (0, 4000) and spec.rgb_channel == 1 and spec.extension == "png"
    assert SourceSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(("kw", "error", "message"), [
    ({"z_range": (5, 5)}, InvalidBox, "z_range 5:5 is empty"),
    ({"x_extent": "wide"}, InvalidBox, "not a pair of integers"),
    ({"z_step": 0}, UsageError, "z_step 0"),
    ({"read_threads": 0}, UsageError, "read_threads 0"),
    ({"render_scale": 0}, UsageError, "render_scale"),
    ({"tile_size": (0, 5)}, UsageError, "tile_size"),
])
def test_bad_spec_values_fail_at_construction(kw, error, message):
    with pytest.raises(error, match=message):
        SourceSpec(**kw)


def test_unknown_fields_and_datasources_are_usage_errors():
    with pytest.raises(UsageError, match="unknown source spec field"):
        SourceSpec.from_dict({"datasource": "local", "colour": "red"})
    with pytest.raises(UsageError, match="unknown datasource 'ftp'"):
        open_source(SourceSpec(datasource="ftp"))
    with pytest.raises(UsageError, match="unknown datatype"):
        _ = SourceSpec(datatype="pixels").dtype


def test_origin_and_size_come_from_the_extents_where_given():
    spec = SourceSpec(x_extent=(-20, 40), y_extent=(5, 35))
    assert (spec.origin_xy, spec.size_xy) == ((-20, 5), (60, 30))
    assert (SourceSpec(y_extent=(5, 35)).origin_xy, SourceSpec(y_extent=(5, 35)).size_xy) == ((0, 5), (None, 30))
    assert (SourceSpec().origin_xy, SourceSpec().size_xy) == ((0, 0), (None, None))


def test_sample_points_cover_both_ends():
    assert sample_points((0, 1), 3) == [0]
    assert sample_points((10, 20), 0) == [10, 19]
    assert sample_points((0, 100), 3) == [0, 24, 49, 74, 99]


class ConstantSource:
    def __init__(self, spec):
        self.dtype, self.shape_xy, self.z_range, self.origin_xy, self.missing = np.dtype(np.uint8), (2, 3), (0, 4), (0, 0), []

    def read_slab(self, z0, z1):
        return np.full((z1 - z0, 3, 2), 7, np.uint8)


def open_constant(spec):
    return ConstantSource(spec)


def test_register_adds_a_backend(monkeypatch):
    monkeypatch.setitem(REGISTRY, "constant", REGISTRY["local"])
    register("constant", f"{__name__}:open_constant")
    assert open_source(SourceSpec(datasource="constant")).read_slab(0, 2).sum() == 7 * 12
    with pytest.raises(UsageError, match="module:function"):
        register("broken", "no_colon")


def test_s3_without_boto3_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail as if not installed
    with pytest.raises(UsageError, match=r"pip install 'ndex\[s3\]'"):
        open_source(SourceSpec(datasource="s3", s3_bucket="b", base_filename="<p:4>", z_range=(0, 2)))


def test_importing_sources_does_not_import_boto3_or_requests():
    code = "import sys, ndex.sources; print('boto3' in sys.modules, 'requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
