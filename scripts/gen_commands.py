#!/usr/bin/env python
"""gen_commands.py -- the ndex 1.x way to cut a big ingest into jobs, now a thin front to `ndex plan push`.

Edit the settings below and run it, or leave them and pass flags: any flag of `ndex plan push`
(which takes every ndpush flag plus --workers, --memory_per_worker, --jobs, --format, --run,
--plan_dir, --throughput) given on the command line wins over the setting of the same name.

    python gen_commands.py                                  # one ndpush command per line, as in ndex 1.x
    python gen_commands.py --format slurm --plan_dir ingest # an sbatch array script instead
    python gen_commands.py --run local                      # run the jobs here, --workers at a time
    python gen_commands.py pull --collection c ...          # plan a download instead (`ndex plan pull`)

All the work (partition, memory estimate, output) is done by `ndex plan`; this file only turns the
settings into its arguments.
"""
from __future__ import annotations

import sys

# --- settings: edit these (None or "" leaves a setting out; True adds a switch) ---------------------------

COMMAND = "push"  # "push" (ingest, as ndex 1.x) or "pull" (download)

SETTINGS = {
    # where the data goes
    "collection": "",
    "experiment": "",
    "channel": "",
    "datatype": "uint8",  # uint8, uint16 or uint64 (annotations)
    "voxel_size": (1.0, 1.0, 1.0),  # x y z
    "voxel_unit": "nanometers",
    "create_resources": True,  # create (or check) the resources once, before the data jobs
    # where the images are
    "datasource": "local",
    "base_path": "",  # directory of the slices; <ch> is the channel name
    "base_filename": "",  # e.g. "img_<p:4>": <p:4> zero-padded z, <> unpadded z
    "extension": "tif",
    "x_extent": None,  # (start, stop)
    "y_extent": None,
    "z_extent": None,
    "z_range": None,  # only these slices (file numbering)
    "offset_extents": False,
    "forced_offsets": None,  # (x, y, z)
    "log_dir": None,
    # how each job runs
    "threads": 8,
    # the plan
    "workers": 4,  # jobs at once, and the number of jobs unless "jobs" is set
    "memory_per_worker": "8GB",
    "jobs": None,
    "format": None,  # None: shell lines (a json plan directory with --run); or shell, cmd, json, slurm
    "plan_dir": None,
    "throughput": None,  # e.g. "200MB/s" for a time estimate
}


def settings_argv(settings: dict) -> list[str]:
    """The settings as command-line flags, in order: `{"x_extent": (0, 10)}` -> `--x_extent 0 10`."""
    argv: list[str] = []
    for name, value in settings.items():
        if value is None or value is False or value == "":
            continue
        argv.append(f"--{name}")
        if value is not True:
            argv += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return argv


def main(argv: list[str] | None = None) -> int:
    from ndex.cli.main import main as ndex_main

    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("push", "pull") else COMMAND
    settings = dict(SETTINGS)
    if command == "pull":  # ingest-only settings mean nothing to ndpull
        settings = {k: v for k, v in settings.items() if k in PULL_SETTINGS}
    given = {a.split("=", 1)[0][2:] for a in argv if a.startswith("--")}
    settings = {k: v for k, v in settings.items() if k not in given}  # a flag wins over its setting
    return ndex_main(["plan", command, *settings_argv(settings), *argv])


PULL_SETTINGS = ("collection", "experiment", "channel", "threads", "workers", "memory_per_worker", "jobs",
                 "format", "plan_dir", "throughput")

if __name__ == "__main__":
    sys.exit(main())
