"""A server that goes away stops the push at once (a re-run resumes) instead of failing every block slowly."""
from __future__ import annotations

from inprocess_boss import cutout_path
from push_helpers import REF, local_spec, push_job, random_volume, write_slices

from ndex.geometry import Box, plan_blocks, z_slabs
from ndex.transfer.upload import push


def test_unreachable_server_stops_the_push_and_the_rerun_finishes_it(tmp_path, boss, client):
    vol = random_volume((64, 64, 1100), "uint8")
    write_slices(tmp_path / "s", vol)
    boss.make_channel(REF, extent=(1100, 64, 64))
    job = push_job(local_spec(tmp_path / "s", (0, 64)), threads=1, block_bytes=4 * 2**20,
                   manifest=str(tmp_path / "m.sqlite"))
    blocks = [b for slab in z_slabs(Box((0, 0, 0), (1100, 64, 64))) for b in plan_blocks(slab, 1, 4 * 2**20, depth=16)]
    for block in blocks[3:]:  # the connection breaks for every block after the third
        boss.faults.drop(method="POST", path=cutout_path(REF, block))
    first = push(job.spec, job.options, client=client, seed=1)
    assert not first.ok and first.blocks_done == 3
    assert len(first.failures) < len(blocks) - 3  # stopped, not one doomed post per remaining block
    boss.faults.clear()
    second = push(job.spec, job.options, client=client, seed=1)
    assert second.ok and second.blocks_done == len(blocks) - 3
    assert (boss.volume(REF) == vol).all()
