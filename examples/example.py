"""Using ndex from Python (a notebook or a script).

Run against a local server:
    ndex serve --data ./ndex-data &                   # in another terminal
    export NDEX_URL=http://127.0.0.1:8080
    export NDEX_TOKEN=$(ndex token create --data ./ndex-data --user me --role admin)
    python examples/example.py

Against BossDB, set NDEX_TOKEN (or write neurodata.cfg) and change the names below to a channel you can read.
"""
from pathlib import Path

import numpy as np

from ndex import Box, BossClient, ChannelRef, PullSpec, discover, pull, pull_array

remote = discover()  # --url/--token equivalents: discover(url=..., token=...)
ref = ChannelRef("ndex_example", "em", "image")

with BossClient(remote, threads=8) as client:
    # Create a small volume the first time (skipped when it already exists).
    if "ndex_example" not in client.list_collections():
        client.create_collection("ndex_example", description="made by examples/example.py")
        client.create_coord_frame("ndex_example_frame", x=(0, 1024), y=(0, 1024), z=(0, 64),
                                  voxel_size=(4.0, 4.0, 40.0), voxel_unit="nanometers")
        client.create_experiment("ndex_example", "em", coord_frame="ndex_example_frame")
        client.create_channel(ref, type="image", datatype="uint8")
        rng = np.random.default_rng(0)
        volume = rng.integers(1, 255, size=(64, 1024, 1024), dtype=np.uint8)
        client.post_cutout(ref, 0, Box((0, 0, 0), (1024, 1024, 64)), volume)

    # 1. A region straight into a numpy array (z, y, x): any box, aligned or not.
    region = pull_array(ref, Box.from_ranges(x=(100, 700), y=(50, 650), z=(3, 40)), client=client)
    print("array", region.shape, region.dtype, "mean", round(float(region.mean()), 2))

    # 2. The same region as TIFF slices (ndex 1.x file names), resumable if interrupted.
    spec = PullSpec(ref=ref, box=Box.from_ranges(x=(100, 700), y=(50, 650), z=(3, 40)), outdir=Path("example_out"))
    report = pull(spec, client=client)
    print(report.summary())
    print("first file:", sorted(Path("example_out").glob("*.tif"))[0])
