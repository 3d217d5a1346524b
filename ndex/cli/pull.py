"""`ndpull` / `ndex pull`: download a region of a BOSS channel.

Every ndex 1.x flag keeps its meaning; new options are additive.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ndex.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    TqdmProgress,
    add_channel_flags,
    add_connection_flags,
    add_logging_flags,
    ended_early,
    parse_size,
    run_guarded,
    setup_logging,
    standalone_main,
)
from ndex.cli.flags import flag_names
from ndex.cli.missing import naming_missing
from ndex.client import BossClient, ChannelRef
from ndex.config import discover
from ndex.errors import UsageError
from ndex.geometry import DEFAULT_BLOCK_BYTES, Box
from ndex.progress import mb
from ndex.sinks.base import COMPRESSIONS
from ndex.transfer.convert import MODES
from ndex.transfer.download import OUTPUTS, PullSpec, TransferOptions, make_plan, pull
from ndex.transfer.pyramid import is_pyramid, plan_levels, pull_levels

EPILOG = """\
examples:
  ndpull --collection kasthuri --experiment em --channel images --x 0 1024 --y 0 1024 --z 0 32 --outdir out
  ndpull --collection c --experiment e --channel ch --full_extent --res 2 --stack_filename vol.ome.tif
  ndpull ... --output zarr --stack_filename vol.ome.zarr       (OME-Zarr, blocks placed directly)
  ndpull ... --stack_filename vol.ome.zarr --levels 0-3       (levels 0 to 3 in one OME-Zarr pyramid)
  ndpull ... --output precomputed --levels 0-2                (a neuroglancer precomputed volume)
  ndpull ... --dry_run                                        (print the plan: blocks, bytes, memory)
Re-running an interrupted pull with the same arguments continues where it stopped.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_connection_flags(parser)
    what = add_channel_flags(parser, "what to download")
    what.add_argument("--x", nargs=2, type=int, metavar=("X0", "X1"), help="x range, half-open, at --res")
    what.add_argument("--y", nargs=2, type=int, metavar=("Y0", "Y1"), help="y range, half-open, at --res")
    what.add_argument("--z", nargs=2, type=int, metavar=("Z0", "Z1"), help="z range, half-open, at --res")
    what.add_argument("--t", nargs=2, type=int, metavar=("T0", "T1"),
                      help="time range of a time-series channel; writes one output per time point")
    what.add_argument("--res", type=int, default=0, help="resolution level (0 = full resolution)")
    what.add_argument("--iso", action="store_true", help="read the isotropic pyramid of an anisotropic experiment")
    what.add_argument("--full_extent", action="store_true",
                      help="download the channel's full extent (scaled to --res); not with --x/--y/--z")
    out = parser.add_argument_group("output")
    out.add_argument("--outdir", default="./", help="output directory (default: current directory)")
    out.add_argument("--output", choices=OUTPUTS, default=None,
                     help="tif: one TIFF per slice (default); stack: one multipage (Big)TIFF; ome-tiff: OME-TIFF "
                          "stack with voxel size; zarr: OME-Zarr; precomputed: neuroglancer precomputed; numpy: .npy file")
    out.add_argument("--stack_filename", help="write one stack file of this name in --outdir (a .ome.tif name "
                     "gives OME-TIFF, .ome.zarr gives OME-Zarr, .npy numpy) instead of slices")
    volume = parser.add_argument_group("OME-Zarr and precomputed (--output zarr or precomputed)")
    volume.add_argument("--levels", metavar="FIRST-LAST",
                        help="write resolution levels FIRST to LAST, e.g. 0-3, into one pyramid instead of the "
                             "one level --res; --x/--y/--z are given at level FIRST")
    volume.add_argument("--zarr_version", type=int, choices=(2, 3), default=None,
                        help="OME-Zarr format: 3 = zarr v3 / NGFF 0.5 (default), 2 = zarr v2 / NGFF 0.4 for older "
                             "readers")
    volume.add_argument("--encoding", choices=("raw", "compressed_segmentation", "jpeg"), default=None,
                        help="precomputed chunk encoding (default: compressed_segmentation for uint64 and "
                             "annotation channels, else raw; jpeg is lossy and uint8 only)")
    tiff = parser.add_argument_group("TIFF (--output tif, stack or ome-tiff)")
    tiff.add_argument("--z_digits", type=int, help="zero-pad z in slice names to this width (default: the number "
                     "of digits of the z stop, as ndex 1.x did)")
    tiff.add_argument("--compression", choices=COMPRESSIONS, default=None,
                     help="TIFF compression (default: none for image channels, zlib level 1 for annotations)")
    tiff.add_argument("--compression_level", type=int, help="compression level (zlib 1-9, zstd 1-22)")
    convert = parser.add_argument_group("datatype conversion")
    convert.add_argument("--force_datatype", choices=("uint8", "uint16", "uint32", "uint64"),
                     help="convert the data to this type (see --force_datatype_mode)")
    convert.add_argument("--force_datatype_mode", choices=MODES, default="scale",
                     help="scale: shift by the bit-depth difference (uint16->uint8 is >>8, default); "
                          "clip: saturate; wrap: keep the low bits")
    run = parser.add_argument_group("how")
    run.add_argument("--threads", type=int, default=8, help="parallel requests (default 8)")
    run.add_argument("--block_size", type=parse_size, default=DEFAULT_BLOCK_BYTES,
                     help="largest block per request, e.g. 32MiB (cuboid-aligned, never over the server's cap; "
                          f"default: {DEFAULT_BLOCK_BYTES / 2**20:g}MiB)")
    run.add_argument("--max_memory", type=parse_size, help="cap on the peak memory of the pull (band buffer, blocks, interpreter), e.g. 2GB")
    run.add_argument("--print_metadata", action="store_true",
                     help="print the collection/experiment/channel/frame metadata as JSON and exit")
    run.add_argument("--dry_run", action="store_true", help="print the plan (blocks, bytes, memory) and exit")
    add_logging_flags(parser)


def requested_box(args: argparse.Namespace) -> Box | None:
    given = [r is not None for r in (args.x, args.y, args.z)]
    if args.full_extent:
        if any(given):
            raise UsageError("--full_extent cannot be combined with --x/--y/--z: drop one or the other")
        return None
    if not all(given):
        missing = ", ".join(f"--{a}" for a, g in zip("xyz", given) if not g)
        raise UsageError(f"missing {missing}: give --x, --y and --z ranges, or --full_extent")
    return Box.from_ranges(tuple(args.x), tuple(args.y), tuple(args.z))


def build_spec(args: argparse.Namespace) -> PullSpec:
    """What to pull, from the flags; the output kind and its file name are checked by PullSpec itself."""
    names = {"--collection": args.collection, "--experiment": args.experiment, "--channel": args.channel}
    missing = [flag for flag, value in names.items() if not value]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}: name the channel to download")
    if args.output == "numpy" and not args.stack_filename:  # the command would drop the array it holds
        raise UsageError("--output numpy writes one .npy file: give its name with --stack_filename")
    with flag_names():
        return PullSpec(
            ref=ChannelRef(args.collection, args.experiment, args.channel), box=requested_box(args), res=args.res,
            iso=args.iso, time_range=tuple(args.t) if args.t else None, output=args.output,
            outdir=Path(args.outdir), stack_filename=args.stack_filename, compression=args.compression,
            compression_level=args.compression_level, force_datatype=args.force_datatype,
            force_datatype_mode=args.force_datatype_mode, z_digits=args.z_digits, levels=args.levels,
            zarr_version=args.zarr_version, encoding=args.encoding)


def build_options(args: argparse.Namespace) -> TransferOptions:
    """How to pull, from the flags."""
    with flag_names():
        return TransferOptions(threads=args.threads, block_bytes=args.block_size, max_memory=args.max_memory)


def print_metadata(client: BossClient, args: argparse.Namespace) -> int:
    ref = ChannelRef(args.collection, args.experiment, args.channel)
    with naming_missing(client, ref):
        info = client.channel_info(ref)
    meta = {"url": client.remote.url, "collection": args.collection, "experiment": asdict(info.experiment),
            "channel": asdict(info.channel), "coord_frame": asdict(info.frame)}
    print(json.dumps(meta, indent=2, default=str))
    return EXIT_OK


def execute(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)
    remote = discover(url=args.url, token=args.token, config_file=args.config_file)
    with BossClient(remote, threads=max(1, args.threads)) as client:
        if args.print_metadata:
            return print_metadata(client, args)
        spec, options = build_spec(args), build_options(args)
        with flag_names(), naming_missing(client, spec.ref):
            plans = plan_levels(client, spec, options) if is_pyramid(spec) else [make_plan(client, spec, options)]
        for warning in (w for plan in plans for w in plan.warnings):
            print(f"warning: {warning}", file=sys.stderr)
        if args.dry_run:
            print("\n".join(line for plan in plans for line in plan.describe()))
            return EXIT_OK
        progress = TqdmProgress("ndpull", enabled=not args.quiet and sys.stderr.isatty())
        if not args.quiet:
            for plan in plans:
                print(f"pulling {plan.box} of {spec.ref.collection}/{spec.ref.experiment}/{spec.ref.channel} "
                      f"res {plan.spec.res}: {plan.nblocks} blocks, {mb(plan.nbytes)}, "
                      f"~{plan.memory_estimate / 1e6:,.0f} MB memory", file=sys.stderr)
        with flag_names():  # an output that cannot hold the pull (precomputed's encoding) names its flag
            if is_pyramid(spec):
                report = pull_levels(spec, options, client=client, progress=progress, plans=plans)
            else:
                report = pull(spec, options, client=client, progress=progress, plan=plans[0])
    print(report.summary())
    if (code := ended_early(report)) is not None:
        return code
    for line in report.failure_lines() + report.notes:
        print(line, file=sys.stderr)
    if not report.ok:
        print("some blocks failed: re-run the same command to retry only those", file=sys.stderr)
        return EXIT_FAILED
    if report.blocks_skipped and not args.quiet:
        print(f"resumed: {report.blocks_skipped} blocks were already written by an earlier run", file=sys.stderr)
    where = report.files[0] if len(report.files) == 1 else Path(args.outdir)
    print(f"wrote {len(report.files)} file(s) to {where}")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))


def main(argv: list[str] | None = None) -> int:
    return standalone_main("ndpull", "Download a region of a BOSS channel.", configure, run, argv)


if __name__ == "__main__":
    sys.exit(main())
