"""`ndex verify`: compare local images (the same source flags as ndpush) with what the server holds.

Block by block in BOSS coordinates after offsets, exactly as ndpush posted them. By default the
comparison follows BOSS's merge rule (voxels that are zero in the images may hold older data on the
server); `--exact` requires every voxel to be equal, as after `ndpush --post_zero_blocks`.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import closing

from ndex.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    TqdmProgress,
    add_channel_flags,
    add_connection_flags,
    add_logging_flags,
    run_guarded,
    setup_logging,
)
from ndex.cli.push import add_source_flags, check_names, data_extents, offsets_for, source_spec
from ndex.client import BossClient, ChannelRef
from ndex.config import discover
from ndex.errors import UsageError
from ndex.sources import open_source
from ndex.transfer.upload import PushSpec, TransferOptions, make_plan
from ndex.transfer.verify import verify_volume

# add_source_flags speaks of ingesting; here the same flags choose what is verified
VERIFY_HELP = {
    "warn_missing_files": "verify a missing file's slice as zeros (with a warning) instead of stopping",
    "z_range": "slices to verify (file numbering before offsets; default: --z_extent)",
    "res": "resolution level to verify, as ndpush wrote it (default: 0, the channel's base resolution)",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Verify an ingest: read back the blocks that ndpush posted from these images and\n"
                          "compare them voxel by voxel; exit 1 and list the blocks that differ.")
    add_connection_flags(parser).add_argument("--boss_config_file", help="ndex 1.x name of --config_file")
    add_channel_flags(parser, "channel to verify")
    add_source_flags(parser)
    for action in parser._actions:
        action.help = VERIFY_HELP.get(action.dest, action.help)
    how = parser.add_argument_group("how to compare")
    how.add_argument("--exact", action="store_true",
                     help="every voxel must be equal (default: only voxels non-zero in the images, BOSS's merge rule)")
    how.add_argument("--include_zero_blocks", action="store_true",
                     help="also read back blocks that are all zero in the images (they must be zero on the server)")
    how.add_argument("--threads", type=int, default=4, help="parallel slice reads (default 4)")
    add_logging_flags(parser)


def execute(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)
    check_names(args)
    if not args.channel:
        raise UsageError("missing --channel: name the channel to compare with")
    ref = ChannelRef(args.collection, args.experiment, args.channel)
    remote = discover(url=args.url, token=args.token, config_file=args.config_file or args.boss_config_file)
    spec_source = source_spec(args, ref.channel)
    with BossClient(remote, threads=max(1, args.threads)) as client, closing(open_source(spec_source)) as source:
        source.validate()
        offsets = offsets_for(args, data_extents(args, source), source)  # a volume's metadata places it, as in ndpush
        plan = make_plan(client, PushSpec(ref=ref, source=spec_source, offsets=offsets, res=args.res),
                         TransferOptions(threads=max(1, args.threads)), source)
        progress = TqdmProgress(f"verify {ref.channel}", enabled=not args.quiet and sys.stderr.isatty())
        report = verify_volume(client, plan, source, strict=args.exact, skip_zero=not args.include_zero_blocks,
                               progress=progress)
    print(report.summary())
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
