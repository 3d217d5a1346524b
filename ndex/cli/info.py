"""`ndex info`: what a server holds, from the collections down to one channel's extents and levels.

    ndex info                                   collections
    ndex info COLL                              its experiments
    ndex info COLL EXP                          the experiment, its frame and channels
    ndex info COLL EXP CHAN                     the channel: datatype, extents per level, downsample status
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ndex.cli.common import EXIT_OK, add_connection_flags, run_guarded
from ndex.client import BossClient, ChannelInfo, ChannelRef
from ndex.config import discover
from ndex.errors import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("names", nargs="*", metavar="NAME", help="collection [experiment [channel]]")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_connection_flags(parser)


def channel_lines(client: BossClient, ref: ChannelRef) -> tuple[list[str], dict]:
    info = client.channel_info(ref)
    ch, exp, frame = info.channel, info.experiment, info.frame
    lines = [f"channel {ref}: {ch.type}, {ch.datatype}, downsample {ch.downsample_status}",
             f"frame {frame.name}: {frame.box} ({frame.x_voxel_size:g} x {frame.y_voxel_size:g} x "
             f"{frame.z_voxel_size:g} {frame.voxel_unit}), {exp.num_time_samples} time sample(s)",
             f"hierarchy: {exp.num_hierarchy_levels} level(s), {exp.hierarchy_method}"]
    lines.extend(f"  res {res}: {level_line(info, res)}" for res in info.levels)
    if ch.storage_type != "spdb":
        lines.append(f"storage: {ch.storage_type} {ch.bucket or ''}{ch.cv_path or ''}".rstrip())
    if ch.sources:
        lines.append(f"sources: {', '.join(ch.sources)}")
    return lines, {"channel": asdict(ch), "experiment": asdict(exp), "coord_frame": asdict(frame)}


def level_line(info: ChannelInfo, res: int) -> str:
    """A level's addressable extent and whether it holds data (BOSS's rules, see ChannelInfo)."""
    extent = info.level_extent(res)
    if extent is None:
        return "no addressable voxels (the frame ends before its level-0 start)"
    if res not in info.data_levels:
        return f"{extent}  (never holds data: reads as zeros)"
    return f"{extent}{'' if info.is_built(res) else '  (not built)'}"


def describe(client: BossClient, names: list[str]) -> tuple[list[str], object]:
    if not names:
        found = client.list_collections()
        return [f"{len(found)} collection(s) at {client.remote.url}:", *(f"  {n}" for n in sorted(found))], found
    if len(names) == 1:
        found = client.list_experiments(names[0])
        return [f"collection {names[0]}: {len(found)} experiment(s)", *(f"  {n}" for n in sorted(found))], found
    if len(names) == 2:
        exp = client.get_experiment(*names)
        channels = client.list_channels(*names)
        frame = client.get_coord_frame(exp.coord_frame)
        lines = [f"experiment {names[0]}/{names[1]}: frame {frame.name} {frame.box}, "
                 f"{exp.num_hierarchy_levels} level(s) {exp.hierarchy_method}, {exp.num_time_samples} time sample(s)",
                 f"{len(channels)} channel(s):", *(f"  {n}" for n in sorted(channels))]
        return lines, {"experiment": asdict(exp), "coord_frame": asdict(frame), "channels": channels}
    return channel_lines(client, ChannelRef(*names[:3]))


def execute(args: argparse.Namespace) -> int:
    if len(args.names) > 3:
        raise UsageError("ndex info takes at most three names: collection experiment channel")
    with BossClient(discover(url=args.url, token=args.token, config_file=args.config_file), threads=1) as client:
        lines, data = describe(client, args.names)
    print(json.dumps(data, indent=2, default=str) if args.json else "\n".join(lines))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
