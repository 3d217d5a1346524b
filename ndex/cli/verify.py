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
from ndex.cli.missing import naming_missing
from ndex.cli.push import add_source_flags, check_names, data_extents, offsets_for, source_spec, volume_picks
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
    "channel_index": "0-based position on the volume's channel axis (default: the channel labelled --channel)",
    "time_range": "time points T0 to T1 (half-open) of a 4D volume to verify, each against the BOSS time "
                  "sample ndpush wrote it to (default: all)",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Verify an ingest: read back the blocks that ndpush posted from these images and\n"
                          "compare them voxel by voxel; exit 1 and list the blocks that differ.")
    add_connection_flags(parser).add_argument("--boss_config_file", help="ndex 1.x name of --config_file")
    add_channel_flags(parser, "channel to verify")
    add_source_flags(parser)
    for action in parser._actions:
        action.help = VERIFY_HELP.get(action.dest, action.help)
    parser.set_defaults(channels_list_file=None)  # ndpush's flag: verify compares one channel
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
    picks = volume_picks(args, [ref.channel])  # each time point of a 4D volume against its BOSS time sample
    with BossClient(remote, threads=max(1, args.threads)) as client:
        ok = [verify_pick(args, client, ref, index, time) for _, index, time in picks]
    return EXIT_OK if all(ok) else EXIT_FAILED


def verify_pick(args: argparse.Namespace, client: BossClient, ref: ChannelRef, index: int | None,
                time: int | None) -> bool:
    """Compare one run of ndpush's (a channel, or one time point of a 4D volume); print its report."""
    spec_source = source_spec(args, ref.channel, index, time)
    with closing(open_source(spec_source)) as source:
        source.validate()
        offsets = offsets_for(args, data_extents(args, source), source)  # a volume's metadata places it, as in ndpush
        spec = PushSpec(ref=ref, source=spec_source, offsets=offsets, res=args.res, time_sample=time)
        with naming_missing(client, ref):
            plan = make_plan(client, spec, TransferOptions(threads=max(1, args.threads)), source)
        what = ref.channel if time is None else f"{ref.channel} t={time}"
        progress = TqdmProgress(f"verify {what}", enabled=not args.quiet and sys.stderr.isatty())
        report = verify_volume(client, plan, source, strict=args.exact, skip_zero=not args.include_zero_blocks,
                               progress=progress)
    print(report.summary() if time is None else f"time point {time}: {report.summary()}")
    for line in report.failure_lines():
        print(line, file=sys.stderr)
    return report.ok


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
