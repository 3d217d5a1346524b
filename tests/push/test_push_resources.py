"""--create_resources, --metadata / --metadata_schema, offsets metadata and --downsample, through the real
client against the server app in-process."""
from __future__ import annotations

import json
import time

import pytest
from push_helpers import REF

from ndex.client import ChannelRef
from ndex.errors import RemoteError, UsageError
from ndex.geometry import Box
from ndex.transfer.resources import (
    ResourceMismatch,
    ResourceSpec,
    downsample,
    ensure_resources,
    load_metadata,
    record_offsets,
)

FRAME = Box((0, 0, 0), (2000, 1500, 100))


def test_creates_missing_resources_then_only_checks_them(client):
    spec = ResourceSpec(REF, FRAME, voxel_size=(4, 4, 40), voxel_unit="nanometers", datatype="uint16")
    lines = ensure_resources(client, spec)
    assert lines[0] == "created collection coll" and "created coordinate frame coll_exp" in lines[1]
    assert "created experiment exp (3 levels, anisotropic)" in lines[1]
    info = client.channel_info(REF)
    assert info.channel.datatype == "uint16" and info.frame.box == FRAME and info.frame.voxel_size == (4, 4, 40)
    again = ensure_resources(client, spec)
    assert again == ["collection coll exists", "coordinate frame coll_exp matches; experiment exp exists",
                     "channel chan exists (image, uint16)"]


@pytest.mark.parametrize("change, field", [
    ({"frame": Box((0, 0, 0), (2000, 1500, 120))}, "z_stop"),
    ({"voxel_size": (4, 4, 50)}, "z_voxel_size"),
    ({"voxel_unit": "micrometers"}, "voxel_unit"),
    ({"datatype": "uint8"}, "datatype"),
])
def test_a_differing_existing_resource_is_an_error_naming_the_field(client, change, field):
    base = {"ref": REF, "frame": FRAME, "voxel_size": (4, 4, 40), "datatype": "uint16"}
    ensure_resources(client, ResourceSpec(**base))
    with pytest.raises(ResourceMismatch, match=field):
        ensure_resources(client, ResourceSpec(**{**base, **change}))
    assert client.channel_info(REF).channel.datatype == "uint16"  # nothing overwritten


def test_annotation_channel_gets_uint64_and_its_source(client):
    ann = ChannelRef("coll", "exp", "ann")
    lines = ensure_resources(client, ResourceSpec(ann, FRAME, datatype="uint64", source_channel="em"))
    assert any("source channel em" in line for line in lines)
    assert client.get_channel(ann).type == "annotation" and client.get_channel(ann).sources == ("em",)
    with pytest.raises(UsageError, match="uint64"):
        ResourceSpec(ann, FRAME, datatype="uint8", source_channel="em")


def test_metadata_is_validated_against_the_schema_naming_the_key(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"lab": "x", "age_days": "old", "tags": [1, 2]}))
    schema = {"type": "object", "properties": {"age_days": {"type": "integer"}}, "required": ["lab"]}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    with pytest.raises(UsageError, match=r"metadata key 'age_days'.*'old' is not of type 'integer'"):
        load_metadata(tmp_path / "m.json", tmp_path / "s.json")
    (tmp_path / "m.json").write_text(json.dumps({"age_days": 3}))
    with pytest.raises(UsageError, match="metadata key 'lab'.*required"):
        load_metadata(tmp_path / "m.json", tmp_path / "s.json")
    (tmp_path / "m.json").write_text(json.dumps({"lab": "x", "age_days": 3, "tags": [1, 2]}))
    assert load_metadata(tmp_path / "m.json", tmp_path / "s.json") == {"lab": "x", "age_days": "3", "tags": "[1, 2]"}
    with pytest.raises(UsageError, match="does not exist"):
        load_metadata(tmp_path / "nope.json")


def test_offsets_are_stored_on_the_experiment_as_ndex1_did(boss, client):
    boss.make_channel(REF)
    assert not record_offsets(client, REF, (0, 0, 0))
    assert client.list_metadata("coll", "exp") == []
    assert record_offsets(client, REF, (10, 0, 5))
    assert client.list_metadata("coll", "exp") == ["offsets"]
    assert client.get_metadata("coll", "exp", key="offsets") == "[10, 0, 5]"


def test_downsample_waits_and_reports_progress(boss, client):
    boss.make_channel(REF)
    notes = []

    class Notes:
        def note(self, text):
            notes.append(text)

        def close(self):
            pass

    busy = {"status": "IN_PROGRESS", "num_hierarchy_levels": 1}  # the server's answer while the job runs
    boss.faults.answer(200, json_body=busy, method="GET", path="^/v1/downsample/coll/exp/chan/?$", times=2)
    result = downsample(client, REF, progress=Notes(), poll=0, sleep=lambda s: time.sleep(0.01))
    assert result.status["status"] == "DOWNSAMPLED" and "IN_PROGRESS" in notes[0] and "DOWNSAMPLED" in notes[-1]
    assert result.line == "downsample of coll/exp/chan finished: DOWNSAMPLED (1 levels)"
    assert client.pyramid_recorded(REF)  # a later write resets the status; the record stays
    other = ChannelRef("coll", "exp", "other")
    client.create_channel(other, "image", "uint8")
    boss.faults.answer(200, json_body=busy, method="GET", path="^/v1/downsample/coll/exp/other/?$")  # never ends
    clock = iter(range(0, 1000, 10))
    with pytest.raises(RemoteError, match="did not finish"):
        downsample(client, other, poll=0, timeout=30, sleep=lambda s: None, clock=lambda: next(clock))
