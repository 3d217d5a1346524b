"""The push engine, the real client and the server app in-process: placement, zeros, resume, throttling,
verification. Faults (429s, 400s, damaged bodies) are injected between the client and the app."""
from __future__ import annotations

import numpy as np
import pytest
from inprocess_boss import change_first_voxel, cutout_path
from push_helpers import REF, local_spec, push_job, random_volume, write_slices

from ndex.cli.flags import flag_of
from ndex.client import ChannelRef
from ndex.errors import FieldError, OutOfBounds, SourceError, UsageError
from ndex.geometry import Box
from ndex.sources import open_source
from ndex.transfer.manifest import FAILED, POSTED, VERIFIED, Manifest
from ndex.transfer.options import PROCESS_BASE_BYTES
from ndex.transfer.pipeline import InflightLimit
from ndex.transfer.upload import PushSpec, TransferOptions, make_plan, push

CUBOID8 = 512 * 512 * 16  # block_bytes of one uint8 cuboid: one block per cuboid in these tests


def flag_names_of(exc):
    return exc.renamed({exc.field: flag_of(exc.field)})


def Spec(source, **kw):  # noqa: N802 - reads like the class it builds
    return push_job(source, **{"block_bytes": CUBOID8, **kw})


def run(client, job, **kw):
    return push(job.spec, job.options, client=client, seed=1, **kw)


def test_push_places_non_aligned_volume_exactly(tmp_path, boss, client):
    vol = random_volume((37, 300, 700), "uint16", zero_fraction=0.3)
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF, "uint16", extent=(1024, 512, 64))
    report = run(client, Spec(local_spec(tmp_path / "s", (0, 37)), threads=3, verify="all"))
    assert report.ok, report.failures
    stored = boss.volume(REF)
    np.testing.assert_array_equal(stored[:37, :300, :700], vol)
    assert not stored[37:].any() and not stored[:, 300:].any() and not stored[:, :, 700:].any()
    assert report.slices_read == 37
    assert report.blocks_total == 3 * 2 == report.blocks_done == report.verified  # 3 slabs x 2 cuboids in x
    assert all(b.is_aligned() or b.stop[0] == 700 or b.stop[1] == 300 or b.stop[2] == 37 for b in boss.boxes("post"))


def test_offsets_shift_the_data_and_slabs_align_in_boss_coordinates(tmp_path, boss, client):
    vol = random_volume((20, 64, 80), "uint8")
    write_slices(tmp_path / "s", vol, first=5)  # files 5..24: source z numbering 5..24
    boss.make_channel(REF, "uint8", extent=(1024, 1024, 64))
    source = local_spec(tmp_path / "s", (5, 25), x_extent=(-10, 70), y_extent=(0, 64))
    report = run(client, Spec(source, offsets=(10, 3, 7)))
    assert report.ok, report.failures
    # source x -10..70 -> BOSS 0..80; y 0..64 -> 3..67; z 5..25 -> 12..32
    np.testing.assert_array_equal(boss.volume(REF)[12:32, 3:67, 0:80], vol)
    assert sorted({b.z for b in boss.boxes("post")}) == [(12, 16), (16, 32)]  # cut on BOSS's 16-grid


def test_negative_start_without_offsets_is_refused_before_posting(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((2, 8, 8)))
    boss.make_channel(REF)
    spec = Spec(local_spec(tmp_path / "s", (0, 2), x_extent=(-8, 0), y_extent=(0, 8)))
    with pytest.raises(FieldError, match="BOSS coordinates cannot be negative: pass offsets$") as info:
        run(client, spec)
    assert info.value.field == "offsets" and boss.count("post") == 0
    assert str(flag_names_of(info.value)).endswith("pass --offset_extents (or --forced_offsets X Y Z)")


def test_datatype_and_frame_mismatch_fail_before_anything_is_posted(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((4, 16, 16), "uint16"))
    boss.make_channel(REF, "uint8", extent=(1024, 1024, 64))
    with pytest.raises(UsageError, match="holds uint8 but the images are uint16"):
        run(client, Spec(local_spec(tmp_path / "s", (0, 4))))
    narrow = ChannelRef("coll2", "exp", "chan")
    boss.make_channel(narrow, "uint16", extent=(8, 16, 64))
    with pytest.raises(OutOfBounds, match="x range 0:16 lies outside"):
        run(client, push_job(local_spec(tmp_path / "s", (0, 4)), ref=narrow, block_bytes=CUBOID8))
    assert boss.count("post") == 0


def test_missing_slice_is_a_clear_error_before_posting(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((3, 8, 8)))
    boss.make_channel(REF)
    with pytest.raises(SourceError, match=r"img_000[34].tif does not exist"):
        run(client, Spec(local_spec(tmp_path / "s", (0, 5))))
    assert boss.count("post") == 0


def test_zero_blocks_are_skipped_and_post_zero_blocks_replaces_old_data(tmp_path, boss, client):
    vol = random_volume((16, 64, 1024), "uint8")
    vol[:, :, 512:] = 0  # the second cuboid is empty
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF, extent=(1024, 64, 16))
    boss.store(REF, np.full((16, 64, 1024), 9, np.uint8))  # data of an earlier ingest
    report = run(client, Spec(local_spec(tmp_path / "s", (0, 16)), verify="all"))
    assert report.ok and report.blocks_empty == 1 and report.blocks_done == 1 and boss.count("post") == 1
    assert (boss.volume(REF)[:, :, 512:] == 9).all()  # merge: zeros do not clear
    overwrite = Spec(local_spec(tmp_path / "s", (0, 16)), post_zero_blocks=True, verify="all")
    report = run(client, overwrite)
    assert report.ok and report.blocks_done == 2 and report.verified == 2 and boss.count("to_black") == 2
    np.testing.assert_array_equal(boss.volume(REF), vol)


def test_rerun_posts_only_unconfirmed_blocks(tmp_path, boss, client):
    vol = random_volume((32, 64, 1100), "uint8")
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF, extent=(1100, 64, 32))
    bad = Box((512, 0, 16), (1024, 64, 32))
    boss.faults.boss_error(400, 9001, "storage hiccup", method="POST", path=cutout_path(REF, bad))
    spec = Spec(local_spec(tmp_path / "s", (0, 32)), manifest=str(tmp_path / "m.sqlite"))
    first = run(client, spec)
    assert not first.ok and list(first.failures) == [bad] and first.blocks_done == 5
    rows = Manifest(tmp_path / "m.sqlite", spec.key(boss.remote.url))
    assert rows.row(bad)["state"] == FAILED and "storage hiccup" in rows.row(bad)["error"]
    assert rows.counts().get(POSTED, 0) + rows.counts().get(VERIFIED, 0) == 5
    rows.close()
    boss.faults.clear()
    boss.forget()
    second = run(client, spec)
    assert second.ok and boss.boxes("post") == [bad] and second.blocks_resumed == 5 and second.blocks_done == 1
    np.testing.assert_array_equal(boss.volume(REF), vol)
    third = run(client, spec)
    assert third.ok and third.blocks_done == 0 and boss.boxes("post") == [bad] and third.slices_read == 0


def test_a_different_spec_does_not_reuse_the_manifest(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((16, 32, 32)))
    boss.make_channel(REF)
    manifest = str(tmp_path / "m.sqlite")
    run(client, Spec(local_spec(tmp_path / "s", (0, 16)), manifest=manifest))
    shifted = Spec(local_spec(tmp_path / "s", (0, 16)), offsets=(32, 0, 0), manifest=manifest)
    report = run(client, shifted)
    assert report.blocks_resumed == 0 and report.blocks_done == 1 and boss.count("post") == 2


def test_throttling_slows_down_instead_of_failing(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((32, 64, 2048)))
    boss.make_channel(REF, extent=(2048, 64, 32))
    # a gateway's 429: with Retry-After (without one it would be BossDB's spent quota)
    boss.faults.boss_error(429, 0, "slow down", headers={"Retry-After": "0.01"}, method="POST", times=5)
    report = run(client, Spec(local_spec(tmp_path / "s", (0, 32)), threads=4, verify="none"))
    assert report.ok and report.blocks_done == 8 and report.throttled == 5
    assert boss.count("post") == 8 + 5


def test_inflight_limit_is_aimd_and_shares_the_pause():
    now = [100.0]
    slept: list[float] = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limit = InflightLimit(8, clock=lambda: now[0], sleep=sleep)
    limit.throttled(2.5)
    limit.throttled(None)
    assert limit.limit == 2
    limit.wait_turn()
    assert pytest.approx(sum(slept)) == 2.5
    for _ in range(2):
        limit.success()
    assert limit.limit == 3  # additive increase after `limit` successes


def test_verification_mismatch_is_reposted_and_reported(tmp_path, boss, client):
    vol = random_volume((16, 64, 64))
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF)
    boss.faults.rewrite_request(change_first_voxel(np.uint8), method="POST", times=1)  # stored damaged, once
    report = run(client, Spec(local_spec(tmp_path / "s", (0, 16)), verify="all"))
    assert report.ok and report.verify_mismatches == 1 and report.reposted == 1 and report.verified == 1
    assert boss.count("post") == 2
    np.testing.assert_array_equal(boss.volume(REF)[:16, :64, :64], vol)


def test_persistent_mismatch_fails_the_block(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((16, 64, 64)))
    boss.make_channel(REF)
    boss.faults.rewrite_response(change_first_voxel(np.uint8), method="GET", path="/v1/cutout/")  # it lies
    report = run(client, Spec(local_spec(tmp_path / "s", (0, 16)), verify="all"))
    assert not report.ok and "voxels differ" in next(iter(report.failures.values()))


def test_sample_verification_reads_back_blocks_of_every_slab(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((48, 32, 1500)))
    boss.make_channel(REF, extent=(1536, 32, 48))
    report = run(client, Spec(local_spec(tmp_path / "s", (0, 48)), verify="sample"))
    assert report.ok and report.verified == 3 and boss.count("get") == 3


def test_unreadable_slab_fails_its_blocks_and_the_rest_is_posted(tmp_path, boss, client):
    vol = random_volume((32, 16, 16))
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF)
    source = open_source(local_spec(tmp_path / "s", (0, 32)))
    (tmp_path / "s" / "img_0020.tif").write_bytes(b"not a tiff at all")
    source.validate = lambda sample=3: None  # the damage is found while reading, not beforehand
    report = run(client, Spec(local_spec(tmp_path / "s", (0, 32))), source=source)
    source.close()
    assert list(report.failures) == [Box((0, 0, 16), (16, 16, 32))] and report.blocks_done == 1
    assert "img_0020.tif" in report.failures[Box((0, 0, 16), (16, 16, 32))]


def test_spec_json_round_trip_and_z_restriction(tmp_path):
    spec = PushSpec(REF, local_spec(tmp_path, (0, 100), x_extent=(0, 64), y_extent=(0, 64)), offsets=(0, 0, 5))
    assert PushSpec.from_json(spec.to_json()) == spec
    options = TransferOptions(verify="all", manifest="m.sqlite", threads=3, max_memory=2**30)
    assert TransferOptions.from_json(options.to_json()) == options
    job = spec.for_z_range(16, 32)
    assert job.source.z_range == (11, 27) and job.key("u") != spec.key("u")
    assert spec.key("a") != spec.key("b")
    assert spec.key("a", 2**20) != spec.key("a", 2**22)  # the block size decides the blocks; nothing else of how
    assert set(spec.to_dict()).isdisjoint({"threads", "verify", "manifest", "max_memory", "block_bytes"})
    with pytest.raises(UsageError, match="unknown push spec field"):
        PushSpec.from_json('{"ref": "a/b/c", "source": {}, "bogus": 1}')
    with pytest.raises(UsageError, match="unknown transfer options field"):
        TransferOptions.from_json('{"threads": 2, "token": "secret"}')


def test_plan_memory_estimate_and_cap(tmp_path, boss, client):
    write_slices(tmp_path / "s", random_volume((2, 1024, 1024), "uint16"))
    boss.make_channel(REF, "uint16", extent=(1024, 1024, 16))
    source = open_source(local_spec(tmp_path / "s", (0, 2)))
    spec = PushSpec(REF, local_spec(tmp_path / "s", (0, 2)))
    plan = make_plan(client, spec, TransferOptions(threads=4), source)
    slab = 1024 * 1024 * 16 * 2
    assert plan.slab_bytes == slab and plan.memory_estimate == 2 * slab + 4 * 3 * (512 * 512 * 2 * 2)  # blocks are 2 slices deep here
    fixed = plan.decode_bytes + PROCESS_BASE_BYTES  # the cap is the process's: these come off it first
    capped = make_plan(client, spec, TransferOptions(threads=4, max_memory=fixed + 36 * 2**20), source)
    # a band of one cuboid row (16 MiB) fits with every thread busy: the read-ahead goes first
    assert (capped.slabs_in_flight, capped.inflight, capped.band[0]) == (1, 4, 512)
    assert capped.process_estimate <= fixed + 36 * 2**20 and len(capped.slabs) == 2
    tight = make_plan(client, spec, TransferOptions(threads=4, max_memory=fixed + 12 * 2**20), source)
    assert (tight.slabs_in_flight, tight.band) == (1, (512, 512)) and tight.process_estimate <= fixed + 12 * 2**20
    with pytest.raises(FieldError, match="^max_memory 1.0 MB is too small .*; raise max_memory or lower the block"):
        make_plan(client, spec, TransferOptions(max_memory=2**20), source)
    source.close()
    assert any("memory" in line for line in plan.describe())
