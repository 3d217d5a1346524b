"""What a push is and how it is cut: the spec, its slabs and blocks, and the memory they take.

Coordinates. A source numbers z (and places x/y) in its own coordinates; `PushSpec.offsets` shift
them into BOSS coordinates: BOSS (x, y, z) = source (x, y, z) + offsets, where a source's x/y start at
its `origin_xy` (the x/y extent starts). Slabs and blocks are aligned to the 512x512x16 cuboid grid
of BOSS coordinates *after* the offsets, so a job boundary on the grid is a cuboid boundary on the
server, and two jobs whose z ranges do not overlap never touch the same cuboid.

Bands. A slab is read and posted band by band: whole cuboid rows of its XY extent (parts of one
cuboid row when even one row is too big), as many rows as fit (`options.band_shape`), the whole slab
when it is small. Sources that read parts of a slice (TIFF strips or tiles, local or S3, stacks)
read only the band; the others decode each slice once (see sources/slices.py).

Memory is bounded by `slabs_in_flight` bands plus the blocks in flight (the copy, its compressed
body and, when verified, the read-back); `Layout.memory_estimate` says how much, and
`Layout.process_estimate` adds what the process holds besides (the interpreter and libraries,
slices being decoded by the source: a band of a slice per read thread where the format reads
parts, else a whole slice and its file).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ndex.client import ChannelInfo, ChannelRef
from ndex.errors import FieldError, OutOfBounds, UsageError
from ndex.geometry import Box, Triple, plan_blocks, z_slabs
from ndex.progress import mb
from ndex.sources import SourceSpec
from ndex.transfer.options import (
    DEFAULT_BAND_BYTES,
    PROCESS_BASE_BYTES,
    SLAB_DEPTH,
    Band,
    TransferOptions,
    band_bytes,
    band_floor,
    band_shape,
    bands_in_flight,
    cut_bands,
    known_fields,
    too_small,
)

CHUNK_ROWS = 512  # the most rows of one strip or tile row a partial read decodes at once (what ndpull writes)
DEFAULT_PUSH_BLOCK_BYTES = 4 * 2**20  # at most one cuboid of any dtype: ndex serve stores a whole cuboid without a merge
# a block in flight holds a pooled contiguous copy, its compressed body (at most as big) and, when
# verified, its read-back copy: what memory estimates (here and in `ndex plan`) count per block
COPIES_PER_BLOCK = 3


def block_copies(options: TransferOptions) -> int:
    """Copies of a block in flight: the pooled copy and its body, and a read-back unless verify is none."""
    return COPIES_PER_BLOCK - (options.verify == "none")


@dataclass(frozen=True)
class PushSpec:
    """What a push moves: channel, source, offsets, resolution. JSON round-trippable; re-run, it resumes."""

    ref: ChannelRef
    source: SourceSpec
    offsets: Triple = (0, 0, 0)  # added to source coordinates to give BOSS coordinates
    res: int = 0
    post_zero_blocks: bool = False  # replace instead of merge: clear each block (to_black) before posting it
    time_sample: int | None = None  # the BOSS time sample written (a 4D source's time point); None: the default

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", tuple(int(v) for v in self.offsets))
        if len(self.offsets) != 3:
            raise FieldError("offsets", f"{{field}} {self.offsets} must be three integers (x, y, z)")

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref.path, "source": self.source.to_dict(), "offsets": list(self.offsets),
                "res": self.res, "post_zero_blocks": self.post_zero_blocks, "time_sample": self.time_sample}

    @property
    def time_range(self) -> tuple[int, int] | None:
        """The cutout time range of `time_sample` (None: the 3D cutout URL, the channel's default sample)."""
        return None if self.time_sample is None else (self.time_sample, self.time_sample + 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PushSpec:
        data = known_fields(cls, data, "push spec")
        data["ref"] = ChannelRef.parse(data["ref"])
        data["source"] = SourceSpec.from_dict(data["source"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PushSpec:
        return cls.from_dict(json.loads(text))

    def key(self, server: str = "", block_bytes: int = DEFAULT_PUSH_BLOCK_BYTES) -> str:
        """Hash of what decides the blocks and their contents: the spec and the block size, not threads or memory."""
        # fields of volume sources count only when set, so manifests written before they existed keep their keys
        source = {k: v for k, v in self.source.to_dict().items()
                  if k != "read_threads" and not (k in VOLUME_FIELDS and v == VOLUME_FIELDS[k])}
        what = {"server": server, "ref": self.ref.path, "source": source, "offsets": list(self.offsets),
                "res": self.res, "block_bytes": block_bytes, "post_zero_blocks": self.post_zero_blocks}
        if self.time_sample is not None:  # only then: manifests of 3D pushes keep their keys
            what["time_sample"] = self.time_sample
        return hashlib.blake2b(json.dumps(what, sort_keys=True).encode(), digest_size=16).hexdigest()

    def for_z_range(self, z0: int, z1: int) -> PushSpec:
        """The same push restricted to BOSS z range z0:z1 (how a planner cuts jobs on the cuboid grid)."""
        oz = self.offsets[2]
        return replace(self, source=replace(self.source, z_range=(z0 - oz, z1 - oz)))


# SourceSpec's fields for volume sources, with their defaults (a field at its default is left out of the key)
VOLUME_FIELDS = {f.name: f.default for f in fields(SourceSpec)
                 if f.name in ("source_url", "source_level", "time_index", "channel_index")}


def reads_parts(source: SourceSpec) -> bool:
    """Whether the source reads bands of its slices (TIFF slices, stacks, tiles, render, volumes), not whole
    slices (PNG and other image files)."""
    return source.datasource not in ("local", "s3") or source.extension.lower() in ("tif", "tiff")


def decode_bytes(source: SourceSpec, box: Box, itemsize: int, chunk_bytes: int = 0) -> int:
    """Slices being fetched and decoded by the source, per read thread: a strip or a row of tiles (read
    and decoded, at most a cuboid row) where the format reads parts, else a whole file and its slice;
    plus, for a volume, two of its stored chunks (fetched and decoded whole however little of them a band
    needs: measured 1.3x a 268 MB chunk above the rest)."""
    sx, sy, _ = box.shape
    rows = min(sy, CHUNK_ROWS) if reads_parts(source) else sy
    return source.read_threads * 2 * sx * rows * itemsize + 2 * chunk_bytes


def push_block_bytes(options: TransferOptions) -> int:
    return options.block_bytes or DEFAULT_PUSH_BLOCK_BYTES


@dataclass(frozen=True)
class Layout:
    """A push of `box` cut into slabs and blocks, and what of it is in flight: arithmetic only, no source or channel."""

    spec: PushSpec
    options: TransferOptions
    box: Box  # BOSS coordinates of the data this job posts
    itemsize: int
    slabs: tuple[Box, ...]  # the units read in order: bands of the z-slabs (whole slabs when they fit)
    blocks_per_slab: tuple[tuple[Box, ...], ...]
    block_bytes: int  # bytes of the largest block
    slabs_in_flight: int
    inflight: int
    band: Band  # (rows, columns) of the band grid
    chunk_bytes: int  # a stored chunk of a volume source: each read decodes whole chunks (0: not a volume)

    @property
    def nblocks(self) -> int:
        return sum(len(b) for b in self.blocks_per_slab)

    @property
    def nbytes(self) -> int:
        return self.box.nbytes(self.itemsize)

    @property
    def slab_bytes(self) -> int:
        """Bytes of the largest band (what one slab in flight holds)."""
        return band_bytes(self.box, self.band, self.itemsize)

    @property
    def memory_estimate(self) -> int:
        """Bands and blocks in flight (what `ndex plan` budgets per job; --max_memory caps the process_estimate)."""
        # the read-ahead holds consecutive bands (a large one and the small last one of its slab, ...)
        return (bands_in_flight(self.box, self.band, self.slabs_in_flight, self.itemsize)
                + self.inflight * block_copies(self.options) * self.block_bytes)

    @property
    def reads_parts(self) -> bool:
        return reads_parts(self.spec.source)

    @property
    def decode_bytes(self) -> int:
        return decode_bytes(self.spec.source, self.box, self.itemsize, self.chunk_bytes)

    @property
    def process_estimate(self) -> int:
        """Peak RSS of the whole push process: the engine's buffers, the source's, and the interpreter."""
        return self.memory_estimate + self.decode_bytes + PROCESS_BASE_BYTES


@dataclass(frozen=True)
class PushPlan(Layout):
    """The resolved push: its layout, checked against the channel and the source."""

    info: ChannelInfo
    source_description: str = ""

    @property
    def dtype(self) -> np.dtype:
        return self.info.dtype

    def describe(self) -> list[str]:
        s, o = self.spec, self.options
        return [
            f"channel   {s.ref} ({self.info.channel.datatype}, {self.info.channel.type}) at resolution {s.res}",
            f"source    {self.source_description}",
            f"region    {self.box} (BOSS coordinates, offsets x {s.offsets[0]}, y {s.offsets[1]}, z {s.offsets[2]})",
            f"blocks    {self.nblocks} cuboid-aligned blocks in {len(self.slabs)} slabs of up to 16 slices",
            f"bytes     {mb(self.nbytes)} uncompressed",
            f"memory    ~{self.process_estimate / 1e6:,.0f} MB peak: {self.slabs_in_flight} bands of "
            f"{mb(self.slab_bytes)} + {self.inflight} blocks of <= {mb(self.block_bytes)} in flight "
            f"x{block_copies(o)} (copy, body{', read-back' if o.verify != 'none' else ''}) "
            f"+ {self.decode_bytes / 1e6:,.0f} MB of slices being decoded "
            + (f"(including 2 stored chunks of {mb(self.chunk_bytes)}) " if self.chunk_bytes else
               "(bands of slices: the format reads parts) " if self.reads_parts else
               "(whole slices: the format cannot be read in parts; decoded once, kept on disk for the bands) ")
            + f"+ {PROCESS_BASE_BYTES / 1e6:,.0f} MB interpreter",
            f"verify    {o.verify}" + (f" ({o.verify_per_slab} block(s) per slab)" if o.verify == "sample" else ""),
            f"zeros     {'cleared (to_black) and posted' if s.post_zero_blocks else 'all-zero blocks skipped'}",
        ]


def source_box(source: Any, offsets: Triple) -> Box:
    """BOSS box of a source's data after offsets; a clear error if it would start below zero."""
    (ox, oy, oz), (x0, y0), (sx, sy) = offsets, source.origin_xy, source.shape_xy
    z0, z1 = source.z_range
    start = (x0 + ox, y0 + oy, z0 + oz)
    for axis, value in zip("xyz", start):
        if value < 0:
            raise FieldError("offsets", f"the data starts at {axis} = {value} in BOSS coordinates, but BOSS "
                                        "coordinates cannot be negative: pass {field}")
    return Box(start, (x0 + ox + sx, y0 + oy + sy, z1 + oz))


def check_channel(info: ChannelInfo, source: Any, res: int) -> None:
    """Datatype and resolution checks that must pass before anything is posted."""
    if np.dtype(source.dtype) != info.dtype:
        raise UsageError(f"channel {info.ref} holds {info.channel.datatype} but the images are "
                         f"{np.dtype(source.dtype).name}: pass --datatype {info.channel.datatype} to convert, "
                         "or push into a channel of the images' datatype")
    base = info.channel.base_resolution
    if res not in (base, base + 1):
        raise OutOfBounds(f"resolution {res} of channel {info.ref} cannot be written: BOSS writes only the "
                          f"base resolution {base} (or {base + 1})")


def fit_memory(options: TransferOptions, box: Box, itemsize: int, block_bytes: int,
               fixed: int = 0) -> tuple[int, int, Band]:
    """(slabs_in_flight, blocks in flight, band grid) within `max_memory`; blocks keep their size (the manifest's).

    `max_memory` caps the whole process: `fixed` (the interpreter, slices being decoded) comes off it
    first. Without a cap, bands are at most DEFAULT_BAND_BYTES. With one, the engine keeps its read-ahead
    and its threads busy as long as a band of at least one cuboid row fits, then gives them up, one by
    one, down to one band of one cuboid and one block in flight; below that the cap is refused, naming
    the field `max_memory`.
    """
    slabs, inflight = options.slabs_in_flight, options.threads
    if options.max_memory is None:
        band = band_shape(box, itemsize, DEFAULT_BAND_BYTES, split_x=True)
        return slabs, inflight, band or band_shape(box, itemsize, band_floor(box, itemsize, split_x=True),
                                                   split_x=True)  # type: ignore[return-value]  # the floor fits
    per_block = block_copies(options) * block_bytes
    for whole_rows in (True, False):  # bands of whole cuboid rows at any parallelism, before split rows
        for k in range(inflight, 0, -1):
            for n in range(slabs, 0, -1):  # the read-ahead goes before the threads
                budget = (options.max_memory - fixed - k * per_block) // n
                band = band_shape(box, itemsize, budget, split_x=not whole_rows)
                if band is not None:
                    return n, k, band
    floor = band_floor(box, itemsize, split_x=True)
    raise too_small(options.max_memory, floor + per_block + fixed,
                    f"one band of {mb(floor)}, one block in flight of {mb(per_block)}, {mb(fixed)} of slices "
                    "being decoded and the interpreter", " or lower the block size")


def make_plan(client: Any, spec: PushSpec, options: TransferOptions, source: Any,
              info: ChannelInfo | None = None) -> PushPlan:
    """Resolve and check a push against the channel: every error that can be known beforehand is raised here."""
    info = info or client.channel_info(spec.ref)
    check_channel(info, source, spec.res)
    box = source_box(source, spec.offsets)
    info.check_box(box, spec.res)
    chunk = getattr(source, "chunk_bytes", 0)
    return PushPlan(**vars(layout(spec, options, box, info.dtype.itemsize, chunk)), info=info,
                    source_description=source.describe())


def layout(spec: PushSpec, options: TransferOptions, box: Box, itemsize: int, chunk_bytes: int = 0) -> Layout:
    """The slabs and blocks of a push of `box` (BOSS coordinates), fitted to `options.max_memory`;
    `chunk_bytes`: a volume source's stored chunk (see decode_bytes)."""
    deepest = max(z_slabs(box), key=lambda slab: slab.shape[2])  # it has the largest blocks
    largest = max(b.nbytes(itemsize) for b in plan_blocks(deepest, itemsize, push_block_bytes(options),
                                                          depth=SLAB_DEPTH))
    fixed = decode_bytes(spec.source, box, itemsize, chunk_bytes) + PROCESS_BASE_BYTES
    nslabs, inflight, band = fit_memory(options, box, itemsize, largest, fixed)
    slabs = tuple(b for slab in z_slabs(box) for b in cut_bands(slab, band))
    blocks = tuple(tuple(plan_blocks(slab, itemsize, push_block_bytes(options), depth=SLAB_DEPTH)) for slab in slabs)
    return Layout(spec, options, box, itemsize, slabs, blocks, largest, nslabs, int(inflight), band, chunk_bytes)
