"""S3 slices against moto's server on 127.0.0.1: same names as local, under the bucket."""
from __future__ import annotations

import numpy as np
import pytest

from ndex.errors import ConfigError, SourceError, UsageError
from ndex.sources import SourceSpec, open_source

from .conftest import encode, make_volume, s3_client, upload_slices

SMALL = (3, 20, 25)


@pytest.fixture
def bucket(s3_env):
    volume = make_volume(np.uint16, SMALL, seed=21)
    upload_slices(s3_env, "s3-tests", "lab/ch0", volume, fmt="png")
    return volume


def spec(**kw) -> SourceSpec:
    fields = dict(datasource="s3", s3_bucket="s3-tests", base_path="lab/<ch>", base_filename="img_<p:4>",
                  extension="png", channel="ch0", z_range=(0, SMALL[0]))
    fields.update(kw)
    return SourceSpec(**fields)


def test_reads_the_slices_with_the_channel_in_the_prefix(bucket):
    source = open_source(spec())
    try:
        np.testing.assert_array_equal(source.read_slab(0, 3), bucket)
        assert source.dtype == np.uint16 and "s3://s3-tests" in source.describe()
    finally:
        source.close()


def test_bucket_can_be_given_in_base_path(bucket):
    source = open_source(spec(s3_bucket=None, base_path="s3://s3-tests/lab/ch0/"))
    try:
        np.testing.assert_array_equal(source.read_slab(1, 2), bucket[1:2])
    finally:
        source.close()


def test_missing_object_is_named_or_zeroed(bucket, s3_env):
    client = s3_client(s3_env)
    client.delete_object(Bucket="s3-tests", Key="lab/ch0/img_0001.png")
    client.close()
    with pytest.raises(SourceError, match=r"slice z=1: lab/ch0/img_0001\.png does not exist"):
        open_source(spec()).read_slab(0, 3)
    source = open_source(spec(warn_missing_files=True))
    try:
        slab = source.read_slab(0, 3)
    finally:
        source.close()
    assert not slab[1].any() and source.missing == [1]
    np.testing.assert_array_equal(slab[2], bucket[2])


def test_unknown_bucket_is_one_clear_line(s3_env):
    with pytest.raises(SourceError, match="S3 bucket 'no-such-bucket' does not exist"):
        open_source(spec(s3_bucket="no-such-bucket"))


def test_no_bucket_is_a_usage_error(s3_env):
    with pytest.raises(UsageError, match="needs a bucket"):
        open_source(spec(s3_bucket=None))


def test_unknown_profile_is_a_config_error(s3_env):
    with pytest.raises(ConfigError, match="AWS profile 'nobody' not found"):
        open_source(spec(aws_profile="nobody"))


def test_tiles_can_live_in_s3(s3_env):
    volume = make_volume(np.uint8, (2, 20, 25), seed=22)
    client = s3_client(s3_env)
    client.create_bucket(Bucket="tiles")
    for z, image in enumerate(volume):
        for row in range(2):
            for col in range(2):
                tile = np.ascontiguousarray(image[row * 16:(row + 1) * 16, col * 16:(col + 1) * 16])
                client.put_object(Bucket="tiles", Key=f"cat/{z}/{row}_{col}.png", Body=encode(tile, "png"))
    client.delete_object(Bucket="tiles", Key="cat/1/1_1.png")
    client.close()
    source = open_source(SourceSpec(datasource="tiles", base_path="s3://tiles/cat", tile_size=16,
                                    tile_pattern="{z}/{row}_{col}.png", x_extent=(0, 25), y_extent=(0, 20),
                                    z_range=(0, 2)))
    try:
        slab = source.read_slab(0, 2)
    finally:
        source.close()
    expected = volume.copy()
    expected[1, 16:, 16:] = 0
    np.testing.assert_array_equal(slab, expected)
    assert source.missing_tiles == 1


@pytest.mark.parametrize("datasource, message", [("s3", "no z range"), ("tiles", "tiled slices need")])
def test_the_s3_store_is_closed_when_the_source_cannot_be_made(s3_env, monkeypatch, datasource, message):
    from ndex.sources.s3 import S3Files

    closed = []
    monkeypatch.setattr(S3Files, "close", lambda self: closed.append(self.bucket))
    with pytest.raises(UsageError, match=message):
        open_source(SourceSpec(datasource=datasource, base_path="s3://s3-tests/lab"))
    assert closed == ["s3-tests"]
