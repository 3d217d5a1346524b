"""What a push is and how it is cut: the spec, its slabs and blocks, and the memory they take.

Coordinates. A source numbers z (and places x/y) in its own coordinates; `PushSpec.offsets` shift
them into BOSS coordinates: BOSS (x, y, z) = source (x, y, z) + offsets, where a source's x/y start at
its `origin_xy` (the x/y extent starts). Slabs and blocks are aligned to the 512x512x16 cuboid grid
of BOSS coordinates *after* the offsets, so a job boundary on the grid is a cuboid boundary on the
server, and two jobs whose z ranges do not overlap never touch the same cuboid.

Memory is bounded by `slabs_in_flight` slabs plus the blocks in flight (the copy, its compressed
body and, when verified, the read-back); `Layout.memory_estimate` says how much, and
`Layout.process_estimate` adds what the process holds besides (the interpreter and libraries,
slices being decoded by the source).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ndex.client import ChannelInfo, ChannelRef
from ndex.errors import FieldError, OutOfBounds, UsageError
from ndex.geometry import Box, Triple, plan_blocks, z_slabs
from ndex.progress import mb
from ndex.sources import SourceSpec
from ndex.transfer.options import SLAB_DEPTH, TransferOptions, known_fields, slab_bytes, too_small

DEFAULT_PUSH_BLOCK_BYTES = 4 * 2**20  # at most one cuboid of any dtype: ndex serve stores a whole cuboid without a merge
# RSS of the interpreter with numpy, requests, tifffile, blosc, tensorstore and ndex imported
# (measured 77 MB on Linux x86-64, Python 3.11), rounded up
PROCESS_BASE_BYTES = 90 * 10**6
# a block in flight holds a pooled contiguous copy, its compressed body (at most as big) and, when
# verified, its read-back copy: what memory estimates (here and in `ndex plan`) count per block
COPIES_PER_BLOCK = 3


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


VOLUME_FIELDS = {"source_url": "", "source_level": 0, "time_index": None, "channel_index": None}  # their defaults


def push_block_bytes(options: TransferOptions) -> int:
    return options.block_bytes or DEFAULT_PUSH_BLOCK_BYTES


@dataclass(frozen=True)
class Layout:
    """A push of `box` cut into slabs and blocks, and what of it is in flight: arithmetic only, no source or channel."""

    spec: PushSpec
    options: TransferOptions
    box: Box  # BOSS coordinates of the data this job posts
    itemsize: int
    slabs: tuple[Box, ...]
    blocks_per_slab: tuple[tuple[Box, ...], ...]
    block_bytes: int  # bytes of the largest block
    slabs_in_flight: int
    inflight: int

    @property
    def nblocks(self) -> int:
        return sum(len(b) for b in self.blocks_per_slab)

    @property
    def nbytes(self) -> int:
        return self.box.nbytes(self.itemsize)

    @property
    def slab_bytes(self) -> int:
        return slab_bytes(self.box, self.itemsize)

    @property
    def memory_estimate(self) -> int:
        """Slabs and blocks in flight (what --max_memory caps, and what `ndex plan` budgets per job)."""
        # each block in flight holds a pooled contiguous copy and its compressed body (at most as
        # big), and a verified block also its read-back copy
        return self.slabs_in_flight * self.slab_bytes + self.inflight * COPIES_PER_BLOCK * self.block_bytes

    @property
    def decode_bytes(self) -> int:
        """Slices being fetched and decoded by the source: a file's bytes and its decoded image per thread."""
        sx, sy, _ = self.box.shape
        return self.spec.source.read_threads * 2 * sx * sy * self.itemsize

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

    def source_z(self, slab: Box) -> tuple[int, int]:
        """The source's z numbering of a BOSS slab."""
        oz = self.spec.offsets[2]
        return slab.z[0] - oz, slab.z[1] - oz

    def describe(self) -> list[str]:
        s, o = self.spec, self.options
        return [
            f"channel   {s.ref} ({self.info.channel.datatype}, {self.info.channel.type}) at resolution {s.res}",
            f"source    {self.source_description}",
            f"region    {self.box} (BOSS coordinates, offsets x {s.offsets[0]}, y {s.offsets[1]}, z {s.offsets[2]})",
            f"blocks    {self.nblocks} cuboid-aligned blocks in {len(self.slabs)} slabs of up to 16 slices",
            f"bytes     {mb(self.nbytes)} uncompressed",
            f"memory    ~{self.process_estimate / 1e6:,.0f} MB peak: {self.slabs_in_flight} slabs of "
            f"{mb(self.slab_bytes)} + {self.inflight} blocks of <= {mb(self.block_bytes)} in flight "
            f"x3 (copy, body, read-back) + {self.decode_bytes / 1e6:,.0f} MB of slices being decoded "
            f"+ {PROCESS_BASE_BYTES / 1e6:,.0f} MB interpreter",
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


def fit_memory(options: TransferOptions, slab_bytes: int, block_bytes: int) -> tuple[int, int]:
    """(slabs_in_flight, blocks in flight) within `max_memory`; blocks keep their size (the manifest's).

    A cap below one slab plus one block in flight is refused, naming the field `max_memory`.
    """
    slabs, inflight = options.slabs_in_flight, options.threads
    if options.max_memory is None:
        return slabs, inflight
    per_block = COPIES_PER_BLOCK * block_bytes
    while slabs > 1 and slabs * slab_bytes + per_block > options.max_memory:
        slabs -= 1
    budget = options.max_memory - slabs * slab_bytes
    if budget < per_block:
        raise too_small(options.max_memory, slab_bytes + per_block,
                        f"one {mb(slab_bytes)} slab plus one block in flight of {mb(per_block)}",
                        " or lower the block size")
    return slabs, max(1, min(inflight, budget // per_block))


def make_plan(client: Any, spec: PushSpec, options: TransferOptions, source: Any,
              info: ChannelInfo | None = None) -> PushPlan:
    """Resolve and check a push against the channel: every error that can be known beforehand is raised here."""
    info = info or client.channel_info(spec.ref)
    check_channel(info, source, spec.res)
    box = source_box(source, spec.offsets)
    info.check_box(box, spec.res)
    return PushPlan(**vars(layout(spec, options, box, info.dtype.itemsize)), info=info,
                    source_description=source.describe())


def layout(spec: PushSpec, options: TransferOptions, box: Box, itemsize: int) -> Layout:
    """The slabs and blocks of a push of `box` (BOSS coordinates), fitted to `options.max_memory`."""
    slabs = tuple(z_slabs(box))
    blocks = tuple(tuple(plan_blocks(slab, itemsize, push_block_bytes(options), depth=SLAB_DEPTH)) for slab in slabs)
    largest = max((b.nbytes(itemsize) for s in blocks for b in s), default=0)
    nslabs, inflight = fit_memory(options, slab_bytes(box, itemsize), largest)
    return Layout(spec, options, box, itemsize, slabs, blocks, largest, nslabs, int(inflight))
