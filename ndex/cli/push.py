"""`ndpush` / `ndex push`: ingest image slices, stacks, S3 objects or render-ws into a BOSS channel.

Every ndex 1.x flag keeps its meaning; new options are additive. Each channel is one job with its
own log file (ndex 1.x's name, `ingest_log_<coll>_<exp>_<chan>[_<z0>_<z1>].txt`) and, beside it,
a resume manifest (`<log name>.manifest.sqlite`). Re-running the same command continues where the
last run stopped and posts only the blocks not yet confirmed: this replaces ndex 1.x's
`parse_log` / `repeat_cutouts` workflow.
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys
from pathlib import Path

from ndex.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    TqdmProgress,
    add_channel_flags,
    add_connection_flags,
    add_logging_flags,
    ended_early,
    one_line,
    parse_size,
    run_guarded,
    setup_logging,
    standalone_main,
)
from ndex.cli.flags import flag_names
from ndex.cli.missing import CREATE_HERE, naming_missing
from ndex.client import BossClient, ChannelRef
from ndex.config import Remote, discover
from ndex.errors import ConfigError, NdexError, OutOfBounds, UsageError
from ndex.geometry import VOXEL_UNITS, Box, downsample_blocker
from ndex.notify import job_log_name, log_tail, make_notifier, open_job_log, read_token_file, report_message
from ndex.progress import mb
from ndex.sources import DATASOURCES, SourceSpec, open_source
from ndex.transfer import extents
from ndex.transfer.resources import (
    DOWNSAMPLE_TIMEOUT,
    CreateSpec,
    ResourceSpec,
    create,
    downsample,
    load_metadata,
    record_offsets,
)
from ndex.transfer.upload import (
    DEFAULT_PUSH_BLOCK_BYTES,
    VERIFY_MODES,
    PushSpec,
    TransferOptions,
    make_plan,
    push,
)

log = logging.getLogger("ndex.cli.push")
VOLUMES = ("zarr", "n5", "precomputed")  # datasources read through tensorstore, with their own metadata
M_ARENA_MAX = -8  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 2**20  # bytes: larger allocations are mapped, and unmapped when freed

EPILOG = """\
examples:
  ndpush --collection c --experiment e --channel em --datatype uint8 --voxel_size 4 4 40 --voxel_unit nanometers \\
         --x_extent 0 2048 --y_extent 0 2048 --z_extent 0 500 --base_path /data --base_filename 'img_<p:4>' \\
         --extension tif --create_resources          (create or check the resources, then exit)
  ndpush ...same flags without --create_resources... (ingest; re-run the same command to resume)
  ndpush ... --z_range 0 64 --dry_run                 (print blocks, bytes and the memory estimate)
  ndpush ... --channels_list_file chans.txt --base_path '/data/<ch>' (one job per channel)
  ndpush --collection c --experiment e --channel em --datasource zarr --source /data/em.ome.zarr \
         --time_range 0 4 --create_resources   (voxel size and extents from the volume's metadata; then
                                                 the same without --create_resources pushes time points 0-3)
Offsets: BOSS coordinates = file coordinates + offsets; --offset_extents shifts negative extents to 0
(stored as experiment metadata "offsets"), --forced_offsets X Y Z gives them explicitly.
"""


def _pair(group: argparse._ArgumentGroup, flag: str, text: str, kind: type = int) -> None:
    group.add_argument(flag, nargs=2, type=kind, metavar=("START", "STOP"), help=text)


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that say where the images are (shared with `ndex verify`), one group per kind of source."""
    src = parser.add_argument_group("images (slice files and TIFF stacks)")
    src.add_argument("--datasource", choices=DATASOURCES, default="local",
                     help="local slice files, s3 objects, a TIFF stack, CATMAID tiles, a render-ws stack, or an "
                          "OME-Zarr, N5 or neuroglancer precomputed volume (zarr, n5, precomputed: see "
                          "'volumes' below) (default: local)")
    src.add_argument("--base_path", default="",
                     help="directory of the slices (or the stack file); '<ch>' is the channel name: '/data/<ch>'")
    src.add_argument("--base_filename", default="",
                     help="file name template, quoted for the shell: 'img_<p:4>' ('<p:4>' zero-padded z, '<>' unpadded "
                          "z, '<ch>' channel name)")
    src.add_argument("--extension", default="tif", help="file extension: tif, tiff, ome.tif or png")
    src.add_argument("--z_step", type=int, default=1, help="file number step between slices (z's file = z * step)")
    src.add_argument("--warn_missing_files", action="store_true",
                     help="ingest a zero slice (with a warning) for a missing file instead of stopping")
    src.add_argument("--rgb_channel", help="keep this channel of RGB(A) images: r, g, b or a")
    s3 = parser.add_argument_group("S3 (--datasource s3)")
    s3.add_argument("--s3_bucket_name", help="S3 bucket holding the slices (or give --base_path s3://BUCKET/PREFIX "
                                             "instead)")
    s3.add_argument("--aws_profile", help="AWS profile for S3 (default: boto3's usual chain)")
    add_volume_flags(parser)
    tiles = parser.add_argument_group("CATMAID tiles (--datasource tiles)")
    tiles.add_argument("--tile_pattern", default="{z}/{row}_{col}.png", help="tile path pattern under --base_path")
    tiles.add_argument("--tile_size", type=int, nargs=2, metavar=("X", "Y"), default=(1024, 1024),
                       help="tile size in pixels")
    render = parser.add_argument_group("render-ws (--datasource render)")
    for name, text in (("owner", "render owner"), ("project", "render project"), ("stack", "render stack"),
                       ("channel", "render channel (if the stack has channels)")):
        render.add_argument(f"--render_{name}", help=text)
    render.add_argument("--render_baseURL", dest="render_base_url",
                        help="render-ws base URL, e.g. http://host/render-ws/v1")
    render.add_argument("--render_scale", type=float, default=1.0, help="scale render data by this factor")
    _pair(render, "--render_window", "16-bit intensity window mapped onto 0..255")
    for axis in "xyz":
        _pair(render, f"--limit_{axis}", f"only this {axis} range of the render stack")
    add_extent_flags(parser)


def add_volume_flags(parser: argparse.ArgumentParser) -> None:
    """--source and what picks a level, channel and time points of a zarr/n5/precomputed volume."""
    vol = parser.add_argument_group("volumes (--datasource zarr, n5 or precomputed; needs ndex[zarr])")
    vol.add_argument("--source", dest="source_url", default="", metavar="PATH_OR_URL",
                     help="the volume: a path, s3://, gs:// or http(s):// URL, quoted for the shell if it holds "
                          "'<ch>' (the channel name): '/data/<ch>.ome.zarr'; voxel size, unit and offsets default "
                          "to its metadata")
    vol.add_argument("--source_level", type=int, default=0, metavar="N",
                     help="multiscale level to read: 0 is full resolution (OME-Zarr dataset N, N5 s<N>, "
                          "precomputed scale N)")
    vol.add_argument("--source_channel_index", type=int, dest="channel_index", metavar="N",
                     help="0-based position on the volume's channel axis (default: the channel labelled "
                          "--channel, else the channel's position in --channels_list_file)")
    vol.add_argument("--time_range", nargs=2, type=int, metavar=("T0", "T1"),
                     help="time points T0 to T1 (half-open) of a 4D volume; time point T goes into BOSS time "
                          "sample T (default: all)")


def add_extent_flags(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("extents and offsets")
    for axis in "xyz":
        _pair(where, f"--{axis}_extent", f"{axis} extent of the data (its width is the image {axis} size)")
    _pair(where, "--z_range", "slices to ingest (file numbering before offsets; default: --z_extent)")
    where.add_argument("--offset_extents", action="store_true",
                       help="shift negative extents to start at 0; offsets stored as experiment metadata")
    where.add_argument("--forced_offsets", type=int, nargs=3, metavar=("X", "Y", "Z"),
                       help="add these offsets to every coordinate")
    for axis in "xyz":
        _pair(where, f"--coord_frame_{axis}_extent", f"coordinate frame {axis} extent (default: data extent)")
    where.add_argument("--res", type=int, default=0, help="resolution to write (the channel's base resolution)")
    where.add_argument("--datatype", choices=("uint8", "uint16", "uint32", "uint64"),
                       help="voxel type (default: the images'; uint64 for annotations)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add_connection_flags(parser).add_argument("--boss_config_file", help="ndex 1.x name of --config_file")
    what = add_channel_flags(parser, "where to")
    what.add_argument("--channels_list_file", help="file with one channel name per line (one job per channel)")
    add_source_flags(parser)
    res = parser.add_argument_group("creating resources")
    res.add_argument("--create_resources", action="store_true",
                     help="create (or check) collection, frame, experiment and channel, then exit")
    res.add_argument("--voxel_size", type=float, nargs=3, metavar=("X", "Y", "Z"),
                     help="voxel size of a new coordinate frame (default: an existing experiment's, else 1 1 1)")
    res.add_argument("--voxel_unit", choices=tuple(VOXEL_UNITS),
                     help="voxel unit (default: an existing experiment's, else nanometers)")
    res.add_argument("--source_channel", help="the image channel a new annotation (uint64) channel labels (BOSS "
                                              "'sources'; a volume's channel is --source_channel_index)")
    res.add_argument("--metadata", help="JSON object file of key/value metadata attached to the channel")
    res.add_argument("--metadata_schema", help="JSON Schema the --metadata file must satisfy")
    how = parser.add_argument_group("how")
    how.add_argument("--threads", type=int, default=8, help="parallel block uploads (default 8)")
    how.add_argument("--verify", choices=VERIFY_MODES, default="sample",
                     help="read back posted blocks: sample (some per slab, default), all, or none")
    how.add_argument("--verify_per_slab", type=int, default=1, help="blocks read back per slab with --verify sample")
    how.add_argument("--post_zero_blocks", action="store_true",
                     help="replace instead of merge: clear every block (to_black) before posting it, so "
                          "all-zero blocks clear old data too (default: all-zero blocks are skipped)")
    how.add_argument("--block_size", type=parse_size, default=DEFAULT_PUSH_BLOCK_BYTES,
                     help="largest block per request, in whole cuboids (default: one 512x512x16 cuboid, "
                          "which ndex serve stores without a read-modify-write)")
    how.add_argument("--slabs_in_flight", type=int, default=2, help="16-slice slabs held in memory (default 2)")
    how.add_argument("--max_memory", type=parse_size, help="cap on the peak memory of the push (bands, blocks, decoding, interpreter), e.g. 2GB")
    how.add_argument("--downsample", action="store_true", help="after the ingest, build the resolution pyramid "
                     "on the server and wait for it")
    how.add_argument("--downsample_timeout", type=float, default=DOWNSAMPLE_TIMEOUT, metavar="SECONDS",
                     help=f"stop waiting for --downsample after this long (default {DOWNSAMPLE_TIMEOUT:.0f} s = "
                          f"{DOWNSAMPLE_TIMEOUT / 3600:.0f} h); the server goes on building")
    how.add_argument("--dry_run", action="store_true", help="check everything, print the plan and exit")
    how.add_argument("--log_dir", default=".", help="directory of the job log and manifest (default: .)")
    note = parser.add_argument_group("notifications")
    note.add_argument("--slack_token_file", help="file whose first line is a Slack bot token (or set SLACK_TOKEN)")
    note.add_argument("--slack_usr", help="Slack user to message (name, e-mail or id)")
    note.add_argument("--slack_channel", help="Slack channel to post to instead of a user")
    note.add_argument("--slack_webhook", help="Slack incoming-webhook URL (or set SLACK_WEBHOOK_URL)")
    add_logging_flags(parser)


# --- from flags to specs ----------------------------------------------------------------------------


def channel_names(args: argparse.Namespace) -> list[str]:
    if args.channels_list_file:
        try:
            text = Path(args.channels_list_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read --channels_list_file {args.channels_list_file}: {exc.strerror}") from None
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if not names:
            raise UsageError(f"--channels_list_file {args.channels_list_file} lists no channels")
        return names
    if not args.channel:
        raise UsageError("missing --channel (or --channels_list_file): name the channel to ingest into")
    return [args.channel]


def check_names(args: argparse.Namespace) -> None:
    missing = [flag for flag in ("collection", "experiment") if not getattr(args, flag)]
    if missing:
        raise UsageError(f"missing {', '.join('--' + m for m in missing)}: name where the data goes")


def source_spec(args: argparse.Namespace, channel: str, channel_index: int | None = None,
                time_index: int | None = None) -> SourceSpec:
    if args.z_range and args.z_extent and not (args.z_extent[0] <= args.z_range[0] < args.z_range[1]
                                                 <= args.z_extent[1]):
        raise OutOfBounds(f"--z_range {args.z_range[0]} {args.z_range[1]} lies outside --z_extent "
                          f"{args.z_extent[0]} {args.z_extent[1]}: ingest only slices inside the extent")
    return SourceSpec(
        datasource=args.datasource, base_path=args.base_path, base_filename=args.base_filename,
        extension=args.extension, channel=channel, z_step=args.z_step, z_range=args.z_range or args.z_extent,
        x_extent=args.x_extent, y_extent=args.y_extent,
        datatype=args.datatype, warn_missing_files=args.warn_missing_files, rgb_channel=args.rgb_channel,
        read_threads=max(1, min(args.threads, 4)), s3_bucket=args.s3_bucket_name, aws_profile=args.aws_profile,
        render_base_url=args.render_base_url, render_owner=args.render_owner, render_project=args.render_project,
        render_stack=args.render_stack, render_channel=args.render_channel, render_scale=args.render_scale,
        render_window=args.render_window, limit_x=args.limit_x, limit_y=args.limit_y, limit_z=args.limit_z,
        tile_pattern=args.tile_pattern, tile_size=tuple(args.tile_size), source_url=args.source_url,
        source_level=args.source_level, time_index=time_index,
        channel_index=args.channel_index if args.channel_index is not None else channel_index)


def volume_picks(args: argparse.Namespace, names: list[str]) -> list[tuple[str, int | None, int | None]]:
    """(channel name, source channel index, time point) of every run: one per channel, and per time point
    of a 4D volume. A --channels_list_file's names are the channels of the volume's channel axis, in order,
    unless '<ch>' in --source names one volume per channel."""
    if args.datasource not in VOLUMES:
        given = [flag for flag, value in (("--source", args.source_url), ("--source_level", args.source_level),
                                           ("--time_range", args.time_range),
                                           ("--source_channel_index", args.channel_index)) if value]
        if given:
            raise UsageError(f"{', '.join(given)} read volumes: add --datasource zarr, n5 or precomputed")
        return [(name, None, None) for name in names]
    indexed = bool(args.channels_list_file) and "<ch>" not in args.source_url  # else one volume per channel
    points = time_points(args, names[0], 0 if indexed else None, names if indexed else None)
    return [(name, i if indexed else None, t) for i, name in enumerate(names) for t in points]


def time_points(args: argparse.Namespace, name: str, index: int | None,
                listed: list[str] | None = None) -> list[int | None]:
    """The time points to push: --time_range, else all of a 4D volume's; [None] for a 3D one. `listed`: the
    --channels_list_file names, which must each pick their own channel of the volume."""
    first = args.time_range[0] if args.time_range else 0
    source = open_source(source_spec(args, name, index, first))
    try:
        count = source.time_points  # type: ignore[attr-defined]
        if listed:
            check_listed(listed, source)
    finally:
        source.close()
    if not args.time_range:
        return [None] if count == 1 else list(range(count))
    if args.time_range[1] > count:
        raise OutOfBounds(f"--time_range {args.time_range[0]} {args.time_range[1]} is outside the volume's time "
                          f"points 0:{count}")
    return list(range(*args.time_range))


def check_listed(names: list[str], source) -> None:
    """Each listed name reads its own channel of the volume (by label, else by position): never two the same."""
    labels, count = source.channel_labels, source.channel_count
    picked = [labels.index(n) if n in labels else i for i, n in enumerate(names)]
    if len(names) > count or len(set(picked)) < len(picked):
        shown = f" ({', '.join(labels)})" if any(labels) else ""
        raise UsageError(f"--channels_list_file names {len(names)} channels ({', '.join(names)}) but {source.name} has "
                         f"{count}{shown}: list one BOSS channel per source channel, in order, or use their labels")


def data_extents(args: argparse.Namespace, source) -> Box:
    """The whole data's extent before offsets: the flags, else what the source reports."""
    return extents.data_extents(source, args.x_extent, args.y_extent, args.z_extent)


def offsets_for(args: argparse.Namespace, data: Box | None, source=None) -> tuple[int, int, int]:
    """The flags' offsets; without --forced_offsets, a volume's own offset (its metadata's translation) first."""
    placed = getattr(source, "voxel_offset", None)
    if args.forced_offsets or data is None or not placed or not any(placed):
        return extents.offsets_for(data, forced=args.forced_offsets, shift_negative=args.offset_extents)
    shift = extents.offsets_for(data.shift(placed), shift_negative=args.offset_extents)
    return tuple(a + b for a, b in zip(placed, shift))  # type: ignore[return-value]


def check_non_negative(data: Box, offsets: tuple[int, int, int]) -> None:
    with flag_names():
        extents.check_non_negative(data, offsets)


def frame_box(args: argparse.Namespace, data: Box, offsets: tuple[int, int, int]) -> Box:
    with flag_names():
        return extents.frame_box(data, offsets, [getattr(args, f"coord_frame_{a}_extent") for a in "xyz"])


def push_spec(args: argparse.Namespace, ref: ChannelRef, source: SourceSpec, offsets) -> PushSpec:
    """What to push, from the flags (the offsets already worked out from the extents); a 4D volume's time
    point goes into the BOSS time sample of the same number."""
    with flag_names():
        return PushSpec(ref=ref, source=source, offsets=offsets, res=args.res, post_zero_blocks=args.post_zero_blocks,
                        time_sample=source.time_index)


def push_options(args: argparse.Namespace, manifest: Path | None) -> TransferOptions:
    """How to push, from the flags; `manifest` is the resume record beside the job log."""
    with flag_names():
        return TransferOptions(threads=args.threads, slabs_in_flight=args.slabs_in_flight,
                               block_bytes=args.block_size, verify=args.verify,
                               verify_per_slab=args.verify_per_slab, max_memory=args.max_memory,
                               manifest=None if manifest is None else str(manifest))


def create_spec(args: argparse.Namespace, ref: ChannelRef, source, extents: Box, offsets,
                metadata) -> CreateSpec:
    """What --create_resources creates, from the flags and (when the flags leave it open) the images."""
    datatype = "uint64" if args.source_channel else (args.datatype or source.dtype.name)
    frame = frame_box(args, extents, offsets)
    size = tuple(args.voxel_size) if args.voxel_size else getattr(source, "voxel_size", None)
    times = args.time_range[1] if args.time_range else getattr(source, "time_points", 1)
    with flag_names(base_resolution="--res"):
        resources = ResourceSpec(ref=ref, frame=frame, voxel_size=size, num_time_samples=times,
                                 voxel_unit=args.voxel_unit or getattr(source, "voxel_unit", None), datatype=datatype,
                                 source_channel=args.source_channel, base_resolution=args.res)
    return CreateSpec(resources, tuple(offsets), metadata)


def log_path(args: argparse.Namespace, ref: ChannelRef, time: int | None = None) -> Path:
    z = tuple(args.z_range) if args.z_range else None
    return Path(args.log_dir) / timed_log_name(job_log_name(ref.collection, ref.experiment, ref.channel, z), time)


def timed_log_name(name: str, time: int | None) -> str:
    """Each time point of a 4D volume is a run with its own log and manifest: 'ingest_log_..._t3.txt'."""
    if time is None:
        return name
    stem, _, ext = name.rpartition(".")
    return f"{stem}_t{time}.{ext}"


def secrets_of(args: argparse.Namespace, remote: Remote) -> list[str]:
    found = [remote.token, args.slack_webhook or "", os.environ.get("SLACK_TOKEN", ""),
             os.environ.get("SLACK_WEBHOOK_URL", "")]
    if args.slack_token_file:
        try:
            found.append(read_token_file(args.slack_token_file))
        except ConfigError:
            pass  # make_notifier reports it
    return [s for s in found if s]


# --- running ----------------------------------------------------------------------------------------


def execute(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)
    check_names(args)
    names = channel_names(args)
    metadata = load_metadata(args.metadata, args.metadata_schema) if args.metadata else None
    remote = discover(url=args.url, token=args.token, config_file=args.config_file or args.boss_config_file)
    notifier = make_notifier(token_file=args.slack_token_file, user=args.slack_usr, channel=args.slack_channel,
                             webhook_url=args.slack_webhook)
    worst = EXIT_OK
    picks = volume_picks(args, names)
    if args.create_resources:  # the resources of a channel are made once, whatever its time points
        picks = [p for i, p in enumerate(picks) if i == 0 or p[0] != picks[i - 1][0]]
    with BossClient(remote, threads=max(1, args.threads)) as client:
        for name, index, time in picks:
            ref = ChannelRef(args.collection, args.experiment, name)
            worst = max(worst, run_channel(args, client, ref, notifier, metadata, (index, time)))
    return worst


def run_channel(args: argparse.Namespace, client: BossClient, ref: ChannelRef, notifier, metadata,
                pick: tuple[int | None, int | None] = (None, None)) -> int:
    path = log_path(args, ref, pick[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = open_job_log(path, secrets=secrets_of(args, client.remote))
    try:
        log.info("ndpush %s: arguments %s", ref, {k: v for k, v in vars(args).items()
                                                   if k not in ("token", "_run") and v not in (None, False)})
        return _run_channel(args, client, ref, notifier, metadata, path, pick)
    except NdexError as exc:
        log.error("ndpush %s stopped: %s", ref, one_line(exc))
        notifier.send(f"ndpush {ref} stopped: {one_line(exc)}")
        raise
    finally:
        handler.close()


def described_without_images(args: argparse.Namespace) -> bool:
    """--create_resources needs no image files when the flags say everything the resources need."""
    return bool(args.create_resources and args.x_extent and args.y_extent and args.z_extent
                and (args.datatype or args.source_channel) and not args.base_filename
                and args.datasource not in VOLUMES)  # a volume's metadata has the voxel size: read it


def missing_for_resources(args: argparse.Namespace) -> list[str]:
    """The flags --create_resources lacks when no slice files are named to read the rest from."""
    names_files = args.base_filename or args.datasource not in ("local", "s3")  # stacks, render, tiles: others
    if not args.create_resources or names_files or described_without_images(args):
        return []
    missing = [f"--{axis}_extent" for axis in "xyz" if not getattr(args, f"{axis}_extent")]
    return missing + ([] if args.datatype or args.source_channel else ["--datatype"])


def _run_channel(args, client: BossClient, ref: ChannelRef, notifier, metadata, path: Path,
                 pick: tuple[int | None, int | None] = (None, None)) -> int:
    if missing := missing_for_resources(args):
        raise UsageError(f"--create_resources needs {', '.join(missing)} (or the images to read them from: "
                         "--base_path and --base_filename)")
    if described_without_images(args):
        extents = Box.from_ranges(tuple(args.x_extent), tuple(args.y_extent), tuple(args.z_extent))
        offsets = offsets_for(args, extents)
        check_non_negative(extents, offsets)
        return create_resources(args, client, ref, None, extents, offsets, metadata)
    spec_source = source_spec(args, ref.channel, *pick)
    source = open_source(spec_source)
    try:
        source.validate()
        extents = data_extents(args, source)
        offsets = offsets_for(args, extents, source)
        check_non_negative(extents, offsets)
        if args.create_resources:
            return create_resources(args, client, ref, source, extents, offsets, metadata)
        spec, options = push_spec(args, ref, spec_source, offsets), push_options(args, Path(f"{path}.manifest.sqlite"))
        with flag_names(), naming_missing(client, ref, CREATE_HERE):
            plan = make_plan(client, spec, options, source)
        blocker = plan.info.downsample_blocker() if args.downsample else None
        if blocker:  # refused before the ingest, not after hours of it
            raise UsageError(f"--downsample cannot work for {ref}: {blocker}; push without --downsample")
        if args.dry_run:
            print("\n".join(plan.describe()))
            return EXIT_OK
        if metadata:
            client.set_metadata(ref, values=metadata)
        record_offsets(client, ref, offsets)
        say(args, f"pushing {ref}: {plan.box}, {plan.nblocks} blocks, {mb(plan.nbytes)}, "
                  f"~{plan.process_estimate / 1e6:,.0f} MB memory at peak; log {path}")
        progress = TqdmProgress(f"ndpush {ref.channel}", enabled=not args.quiet and sys.stderr.isatty())
        report = push(spec, options, client=client, source=source, progress=progress, notifier=notifier, plan=plan)
    finally:
        source.close()
    return finish(args, client, ref, report, notifier, path)


def finish(args, client: BossClient, ref: ChannelRef, report, notifier, path: Path) -> int:
    summary = report.summary()
    log.info("%s", summary)
    for line in report.failure_lines() + report.notes:
        log.warning("%s", line)
    print(summary)
    if (code := ended_early(report)) is not None:
        notifier.send(f"ndpush {ref} stopped: {one_line(report.ended_by)}")
        return code
    for line in report.failure_lines() + report.notes:
        print(line, file=sys.stderr)
    if report.ok and args.downsample:
        progress = TqdmProgress("downsample", enabled=not args.quiet)
        try:
            result = downsample(client, ref, progress=progress, timeout=args.downsample_timeout)
        finally:
            progress.close()
        log.info("%s", result.line)
        say(args, result.line)
    title = f"ndpush {ref} {'finished' if report.ok else 'FAILED'}"
    notifier.send(report_message(title, [summary, *report.failure_lines(5), *report.notes], log_tail(path, 10)))
    if not report.ok:
        print(f"some blocks failed: re-run the same command to retry only those (manifest {path}.manifest.sqlite)",
              file=sys.stderr)
        return EXIT_FAILED
    print(viewer_link(client, ref))
    return EXIT_OK


def viewer_link(client: BossClient, ref: ChannelRef) -> str:
    """Where to look at the pushed channel (ndex 1.x printed its web-tools link here)."""
    return f"view it: {client.remote.url}/view/{ref.path}/ (ndex serve), or `ndex view {ref.path}` (any BOSS server)"


def create_resources(args, client: BossClient, ref: ChannelRef, source, extents: Box, offsets, metadata) -> int:
    spec = create_spec(args, ref, source, extents, offsets, metadata)
    r = spec.resources
    blocker = downsample_blocker(r.method, r.new_voxel_size)
    if blocker:  # said before anything is created: the frame cannot be changed afterwards
        say(args, f"note: {blocker}: this channel's pyramid cannot be built there (--downsample will be refused); "
                  "give equal x and y voxel sizes if you need one")
    if args.dry_run:
        print(f"would create or check {ref} ({r.channel_type}, {r.datatype}) in frame {r.coord_frame} "
              f"({r.frame}), voxel {r.new_voxel_size} {r.new_voxel_unit}")
        return EXIT_OK
    for line in create(client, spec):
        log.info("%s", line)
        say(args, line)
    return EXIT_OK


def say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (MALLOC_ARENA_MAX, unless the environment sets it).

    glibc gives each thread that allocates under contention an arena of its own (up to 8 per core)
    and keeps freed memory in it for that thread. ndpush's reader, decoder and upload threads each
    allocate slice- and body-sized buffers, so every arena kept a few of them: ~40 MB more peak RSS
    on 1 GiB of 2048x2048 slices with 8 threads, at no measurable speed gain. The mmap threshold is
    fixed too (MALLOC_MMAP_THRESHOLD_, unless set): glibc raises it up to 32 MB after each large free,
    so the strips, regions and bodies of band reads (a few MB each) came from the heap, where they
    fragmented it: 16 slices of 8192 x 8192 peaked at 1.16 GB instead of 0.67 GB. False where this is
    not glibc (nothing to do there).
    """
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        return bool(libc.mallopt(M_ARENA_MAX, count))
    except (OSError, AttributeError):  # not glibc: musl and others have no mallopt
        return False


def run(args: argparse.Namespace) -> int:
    limit_malloc_arenas()
    return run_guarded(lambda: execute(args))


def main(argv: list[str] | None = None) -> int:
    return standalone_main("ndpush", "Ingest image slices or stacks into a BOSS channel.", configure, run, argv)


if __name__ == "__main__":
    sys.exit(main())

