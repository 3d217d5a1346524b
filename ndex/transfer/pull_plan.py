"""What a pull is and how it is cut: the spec, its region, slabs and blocks, and the memory they take.

Memory is bounded by the blocks in flight (`inflight` x block size, each held as the array and its
compressed body) plus, for sinks without partial writes (TIFF slices and stacks), one band buffer:
16 slices of as many cuboid rows of the XY extent as fit (`options.band_shape`), the whole slab when
it is small, down to one cuboid row, or one 512 x 512 cuboid for regions wide enough to be written as
tiled TIFFs. It grows with neither the depth nor the slice size of the volume.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ndex.client import ChannelInfo, ChannelRef
from ndex.errors import FieldError
from ndex.geometry import BOSS_CUBOID, DEFAULT_BLOCK_BYTES, Box, plan_blocks, z_slabs
from ndex.progress import mb
from ndex.sinks.base import COMPRESSIONS, OutputSpec
from ndex.sinks.factory import PARTIAL_WRITES, PYRAMIDS, output_kind
from ndex.sinks.metadata import source_record
from ndex.sinks.tiff_bands import ChunkLayout
from ndex.transfer.convert import MODES
from ndex.transfer.levels import parse_levels
from ndex.transfer.options import (
    DEFAULT_BAND_BYTES,
    PROCESS_BASE_BYTES,
    Band,
    TransferOptions,
    band_bytes,
    band_floor,
    band_shape,
    cut_bands,
    known_fields,
    too_small,
)

# a block in flight is its decoded array; its compressed body lives only while it is decoded (measured:
# blocks in flight cost 1.1-1.2x their size in all)
COPIES_PER_BLOCK = 1
BAND_SHARE = 0.9  # of the memory left for the band under a cap (measured: 16 x 16384^2 uint8 at 512MB, 551 MB without)


@dataclass(frozen=True)
class PullSpec:
    """What a pull moves and where to: channel, region, resolution, output. JSON round-trippable; re-run, it resumes.

    `output` None takes the kind from `stack_filename` (`x.ome.zarr` is OME-Zarr, `x.ome.tif` OME-TIFF,
    `x.tif` a TIFF stack, `x.npy` numpy), or TIFF slices without one; a kind and a name that disagree
    are refused (`sinks.factory.output_kind`).
    """

    ref: ChannelRef
    box: Box | None = None  # voxel coordinates at `res`; None means the full extent at `res`
    res: int = 0
    iso: bool = False
    time_range: tuple[int, int] | None = None  # None: the channel's default time sample, 3D output
    output: str | None = None
    outdir: Path = Path(".")
    stack_filename: str | None = None
    compression: str | None = None  # None: "none" for image channels, "zlib" level 1 for annotations
    compression_level: int | None = None
    force_datatype: str | None = None
    force_datatype_mode: str = "scale"
    z_digits: int | None = None  # zero padding of z in TIFF slice names (a planned pull keeps one width)
    levels: tuple[int, int] | None = None  # first-last (inclusive) levels into one pyramid; `box` is at the first
    zarr_version: int | None = None  # OME-Zarr: 3 (NGFF 0.5, the default) or 2 (NGFF 0.4)
    encoding: str | None = None  # precomputed chunk encoding; None: compressed_segmentation for labels, else raw

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", output_kind(self.output, self.stack_filename))
        check_pyramid_fields(self)
        object.__setattr__(self, "outdir", Path(self.outdir))
        if self.compression is not None and self.compression not in COMPRESSIONS:
            raise FieldError("compression", f"unknown {{field}} {self.compression!r}: use one of "
                                            f"{', '.join(COMPRESSIONS)}")
        if self.force_datatype_mode not in MODES:
            raise FieldError("force_datatype_mode", f"unknown {{field}} {self.force_datatype_mode!r}: use "
                                                    f"{', '.join(MODES)}")
        if self.time_range is not None:
            object.__setattr__(self, "time_range", tuple(int(v) for v in self.time_range))
            if self.time_range[0] >= self.time_range[1]:
                raise FieldError("time_range", f"{{field}} {self.time_range[0]}:{self.time_range[1]} is empty "
                                               "or inverted")

    @property
    def pyramid(self) -> bool:
        """Levels into one pyramid output (zarr, precomputed); a level range of another output is one level."""
        return self.levels is not None and self.output in PYRAMIDS

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out.update(ref=self.ref.path, outdir=str(self.outdir),
                   box=None if self.box is None else [list(self.box.start), list(self.box.stop)],
                   time_range=None if self.time_range is None else list(self.time_range),
                   levels=None if self.levels is None else list(self.levels))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PullSpec:
        data = known_fields(cls, data, "pull spec")
        data["ref"] = ChannelRef.parse(data["ref"])
        if data.get("box") is not None:
            data["box"] = Box(tuple(data["box"][0]), tuple(data["box"][1]))
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PullSpec:
        return cls.from_dict(json.loads(text))

    def for_z_range(self, z0: int, z1: int) -> PullSpec:
        """The same pull restricted to z0:z1 at `res` (needs a box: resolve the full extent first)."""
        if self.box is None:
            raise FieldError("box", "a pull of the full extent has no {field} to cut: give the region first")
        return replace(self, box=self.box.with_z(z0, z1))


@dataclass(frozen=True)
class PullPlan:
    """The resolved pull: region, blocks, slabs and the memory it will need."""

    spec: PullSpec
    options: TransferOptions
    info: ChannelInfo
    box: Box
    slabs: tuple[Box, ...]  # the units written in order: bands of z-slabs for TIFF outputs, else z-slabs
    blocks_per_slab: tuple[tuple[Box, ...], ...]
    block_bytes: int
    inflight: int
    out_dtype: np.dtype
    output_spec: OutputSpec = field(repr=False)
    warnings: tuple[str, ...] = ()  # e.g. a level that may miss writes made after its downsample
    band: Band | None = None  # (rows, columns) of the band grid; None: no band buffer (partial writes)

    @property
    def nblocks(self) -> int:
        return sum(len(b) for b in self.blocks_per_slab)

    @property
    def ntimes(self) -> int:
        return 1 if self.spec.time_range is None else self.spec.time_range[1] - self.spec.time_range[0]

    @property
    def nbytes(self) -> int:
        return self.box.nbytes(self.info.dtype.itemsize, self.ntimes)

    @property
    def slab_bytes(self) -> int:
        """Bytes of the band buffer (0 without one)."""
        return 0 if self.band is None else band_bytes(self.box, self.band, self.out_dtype.itemsize, self.ntimes)

    @property
    def buffers_estimate(self) -> int:
        """The band buffer and the blocks in flight (`max_memory` caps them with the interpreter)."""
        return self.inflight * COPIES_PER_BLOCK * self.block_bytes + self.slab_bytes

    @property
    def memory_estimate(self) -> int:
        """Peak RSS of the pulling process: its buffers and the interpreter."""
        return self.buffers_estimate + PROCESS_BASE_BYTES

    def describe(self) -> list[str]:
        """The dry-run plan, one fact per line."""
        s = self.spec
        return [
            f"channel   {s.ref.collection}/{s.ref.experiment}/{s.ref.channel} ({self.info.channel.datatype}, "
            f"{self.info.channel.type}) at resolution {s.res}",
            f"region    {self.box}" + (f", time {s.time_range[0]}:{s.time_range[1]}" if s.time_range else ""),
            f"blocks    {self.nblocks} cuboid-aligned requests in {len(self.slabs)} "
            + ("slabs of 16 slices" if self.band is None else "bands of 16 slices"),
            f"bytes     {mb(self.nbytes)} uncompressed",
            f"memory    ~{self.memory_estimate / 1e6:,.0f} MB peak ({self.inflight} blocks of "
            f"<= {mb(self.block_bytes)} in flight x{COPIES_PER_BLOCK} + {mb(self.slab_bytes)} band buffer "
            f"+ {PROCESS_BASE_BYTES / 1e6:,.0f} MB interpreter)",
            f"output    {s.output} in {s.outdir}" + (f" ({self.output_spec.compression} compression)"
                                                     if s.output not in PARTIAL_WRITES else ""),
        ]


def check_pyramid_fields(spec: PullSpec) -> None:
    """`levels` (a pyramid output, first level = `res`), `zarr_version` and `encoding` (their format only)."""
    if spec.levels is not None:
        lo, hi = parse_levels(spec.levels)
        if spec.res not in (0, lo):
            raise FieldError("res", f"{{field}} {spec.res} is not the first of levels {lo}-{hi}: the region is given "
                                    "at the first level, drop {field}")
        if hi > lo and spec.output not in PYRAMIDS:
            raise FieldError("levels", f"{{field}} {lo}-{hi} writes a pyramid, which output {spec.output} cannot hold: "
                                       f"write {' or '.join(PYRAMIDS)}, or pull one level")
        object.__setattr__(spec, "levels", (lo, hi))
        object.__setattr__(spec, "res", lo)
    if spec.zarr_version is not None and (spec.output != "zarr" or spec.zarr_version not in (2, 3)):
        raise FieldError("zarr_version", f"{{field}} {spec.zarr_version} is for OME-Zarr output, 2 (NGFF 0.4) or "
                                         "3 (NGFF 0.5)")
    if spec.encoding is not None and spec.output != "precomputed":
        raise FieldError("encoding", f"{{field}} {spec.encoding} is for precomputed output: drop it")


def resolve_box(spec: PullSpec, info: ChannelInfo, built_before: bool = False) -> Box:
    """The requested region at `spec.res`, checked against the frame at that level (`built_before`: see
    `ChannelInfo.check_res`)."""
    info.check_res(spec.res, built_before=built_before)
    box = spec.box if spec.box is not None else info.extent_at(spec.res, spec.iso)
    info.check_box(box, spec.res, spec.iso)
    if spec.time_range is not None:
        info.check_time(spec.time_range)
    return box


def resolve_region(client: Any, spec: PullSpec, info: ChannelInfo) -> tuple[Box, str | None]:
    """`resolve_box`, and a warning when the level may be stale. A level whose DOWNSAMPLED status a later
    write reset may still hold an earlier pyramid: the channel's metadata is asked only then."""
    built_before = (spec.res in info.data_levels and not info.is_built(spec.res)
                    and client.pyramid_recorded(spec.ref))
    return resolve_box(spec, info, built_before), info.stale_warning(spec.res)


def fit_memory(options: TransferOptions, box: Box, itemsize: int, ntimes: int,
               split_x: bool | None) -> tuple[int, int, Band | None]:
    """(block_bytes, inflight, band grid) so that the blocks in flight and the band buffer fit `max_memory`.

    `split_x` None: the sink takes any box, there is no band buffer. Blocks keep their share first
    (every thread busy); what is left is the band's, down to one cuboid row (or cuboid). The cap is the
    whole process's (`memory_estimate`): the interpreter comes off it first. A cap below the smallest band
    plus one block of one cuboid is refused, naming the field `max_memory`.
    """
    inflight = options.threads + 2  # every thread busy, plus a couple of finished blocks waiting to be placed
    block_bytes = options.block_bytes or DEFAULT_BLOCK_BYTES
    cuboid_bytes = BOSS_CUBOID[0] * BOSS_CUBOID[1] * BOSS_CUBOID[2] * itemsize
    if options.max_memory is None:
        band = None if split_x is None else band_shape(box, itemsize, DEFAULT_BAND_BYTES, ntimes, split_x)
        if split_x is not None and band is None:  # the smallest band is over the default: it is the band
            band = band_shape(box, itemsize, band_floor(box, itemsize, ntimes, split_x), ntimes, split_x)
        return block_bytes, inflight, band
    cap = options.max_memory - PROCESS_BASE_BYTES  # the cap is the process's: the interpreter comes first
    for blocks in range(inflight, 0, -1):
        per_block = max(cuboid_bytes, min(block_bytes, max(cap, 0) // (blocks * COPIES_PER_BLOCK)))
        budget = cap - blocks * COPIES_PER_BLOCK * per_block
        if split_x is None and budget >= 0:
            return per_block, blocks, None
        # bands grow into 90% of what is left: the rest absorbs what the estimate does not itemise
        # (response bodies being read, allocator slack); the smallest band may use all of it
        band = None if split_x is None else (band_shape(box, itemsize, int(budget * BAND_SHARE), ntimes, split_x)
                                             or band_shape(box, itemsize, budget, ntimes, split_x))
        if band is not None:
            return per_block, blocks, band
    floor = 0 if split_x is None else band_floor(box, itemsize, ntimes, split_x)
    raise too_small(options.max_memory, floor + COPIES_PER_BLOCK * cuboid_bytes + PROCESS_BASE_BYTES,
                    f"a {mb(floor)} band buffer, one {mb(COPIES_PER_BLOCK * cuboid_bytes)} block and the "
                    f"{mb(PROCESS_BASE_BYTES)} interpreter",
                    ", pull a narrower x/y region, or use output zarr (no band buffer)")


def default_compression(info: ChannelInfo, spec: PullSpec) -> tuple[str, int | None]:
    if spec.compression is not None:
        return spec.compression, spec.compression_level
    if spec.output == "precomputed":  # its chunks are encoded, not compressed
        return "none", None
    if spec.output == "zarr":  # chunks are compressed anyway; zstd-1 is fast and well supported by readers
        return "zstd", 1 if spec.compression_level is None else spec.compression_level
    if info.channel.type == "annotation" or info.dtype.itemsize == 8:
        return "zlib", 1 if spec.compression_level is None else spec.compression_level
    return "none", spec.compression_level


def make_plan(client: Any, spec: PullSpec, options: TransferOptions, info: ChannelInfo | None = None) -> PullPlan:
    """The resolved pull, checked against the channel: every error that can be known beforehand is raised here."""
    info = info or client.channel_info(spec.ref)
    box, warning = resolve_region(client, spec, info)
    remote = getattr(client, "remote", None)
    return layout(spec, options, info, box, (warning,) if warning else (), url=getattr(remote, "url", None))


def layout(spec: PullSpec, options: TransferOptions, info: ChannelInfo, box: Box,
           warnings: tuple[str, ...] = (), url: str | None = None) -> PullPlan:
    """The slabs and blocks of a pull of `box` (already resolved), fitted to `options.max_memory`."""
    times = None if spec.time_range is None else tuple(range(*spec.time_range))
    ntimes = 1 if times is None else len(times)
    itemsize = info.dtype.itemsize
    out_dtype = np.dtype(spec.force_datatype) if spec.force_datatype else info.dtype
    split_x = None if spec.output in PARTIAL_WRITES else ChunkLayout.choose(box).tiled
    block_bytes, inflight, band = fit_memory(options, box, max(itemsize, out_dtype.itemsize), ntimes, split_x)
    slabs = tuple(z_slabs(box) if band is None else (b for slab in z_slabs(box) for b in cut_bands(slab, band)))
    blocks = tuple(tuple(plan_blocks(slab, itemsize, block_bytes, time_samples=ntimes, depth=BOSS_CUBOID[2]))
                   for slab in slabs)
    compression, level = default_compression(info, spec)
    output_spec = OutputSpec(
        box=box, dtype=out_dtype, prefix=spec.ref.prefix, outdir=Path(spec.outdir), time_points=times,
        voxel_size=info.voxel_size_at(spec.res, spec.iso), voxel_unit=info.frame.voxel_unit, resolution=spec.res,
        compression=compression, compression_level=level, stack_filename=spec.stack_filename,
        z_digits=spec.z_digits, extra=output_extra(spec, info, url))
    return PullPlan(spec, options, info, box, slabs, blocks, block_bytes, inflight, out_dtype, output_spec, warnings,
                    band)


def output_extra(spec: PullSpec, info: ChannelInfo, url: str | None) -> dict[str, Any]:
    """What a sink records about the pull (metadata.py) and the format options of the spec."""
    source = source_record(url, spec.ref, iso=spec.iso, channel_type=info.channel.type)
    return {"source": source, "zarr_version": spec.zarr_version,
            "encoding": spec.encoding}
