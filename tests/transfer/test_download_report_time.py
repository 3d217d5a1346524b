"""The run report's seconds (and so its MB/s) include the sink's final assembly, not only the fetching."""
from __future__ import annotations

import time

import numpy as np

from ndex.client import ChannelRef
from ndex.geometry import Box
from ndex.sinks import open_sink
from ndex.transfer.download import pull
from ndex.transfer.options import TransferOptions
from ndex.transfer.pull_plan import PullSpec, make_plan


def test_the_clock_stops_after_the_stack_is_assembled(tmp_path, inprocess_boss):
    vol = np.random.default_rng(0).integers(0, 255, size=(20, 300, 600), dtype=np.uint8)
    ref = ChannelRef("coll", "exp", "chan")
    inprocess_boss.make_channel(ref, "uint8", (600, 300, 20))
    inprocess_boss.store(ref, vol)
    client = inprocess_boss.client()
    spec = PullSpec(ref=ref, box=Box((0, 0, 0), (600, 300, 20)), outdir=tmp_path, output="stack",
                    stack_filename="vol.tif")
    options = TransferOptions(threads=2)
    plan = make_plan(client, spec, options)
    sink = open_sink("stack", plan.output_spec)
    assembled = []
    finish = sink.finish

    def timed_finish():
        files = finish()
        assembled.append(time.monotonic())  # when the assembly ended
        return files

    sink.finish = timed_finish
    started = time.monotonic()
    report = pull(spec, options, client=client, sink=sink, plan=plan)
    assert report.ok and len(assembled) == 1 and (tmp_path / "vol.tif").is_file()
    clock_stopped = report._t0 + report.seconds
    assert started <= report._t0 and clock_stopped >= assembled[0]
