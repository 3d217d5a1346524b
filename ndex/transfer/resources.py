"""Create or check the resources of a push, attach metadata, run the server's downsample.

`ensure_resources` creates what is missing (collection, coordinate frame, experiment, channel) and
checks what exists: an existing resource that differs from what the push needs (datatype, frame
extents, voxel size or unit, channel type, annotation source) is a `ResourceMismatch` naming the
field -- never an overwrite. Names and defaults follow ndex 1.x: the frame is `<collection>_<experiment>`,
the experiment is isotropic when all voxel sizes are equal, and has enough hierarchy levels to
reach a 512-voxel top level in x and y.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndex.client import ChannelRef, CoordFrame
from ndex.client.boss import VOXEL_UNITS
from ndex.client.models import BUILDING, DOWNSAMPLED
from ndex.errors import BadRequest, Conflict, FieldError, RemoteError, ResourceNotFound, UsageError
from ndex.geometry import Box
from ndex.progress import NullProgress, Progress

log = logging.getLogger(__name__)

OFFSETS_KEY = "offsets"  # ndex 1.x's experiment metadata key for --offset_extents


class ResourceMismatch(UsageError):
    """An existing resource differs from what the push needs."""


@dataclass(frozen=True)
class ResourceSpec:
    """What `--create_resources` creates or checks.

    Everything is checked before anything is created: a bad value or a mismatch leaves no new resource
    behind. Voxel size and unit left None mean "the existing experiment's" (a new frame gets 1 1 1
    nanometers), so a channel is added to an experiment without restating its frame.
    """

    ref: ChannelRef
    frame: Box  # a new coordinate frame's extents, BOSS coordinates (after offsets); an existing one must contain it
    voxel_size: tuple[float, float, float] | None = None
    voxel_unit: str | None = None
    datatype: str = "uint8"
    source_channel: str | None = None  # set for annotation channels (then uint64)
    base_resolution: int = 0
    frame_name: str | None = None
    num_hierarchy_levels: int | None = None  # None: enough levels for a 512-voxel top
    hierarchy_method: str | None = None  # None: isotropic if all voxel sizes are equal
    num_time_samples: int = 1  # a new experiment's; an existing one must have at least as many (4D sources)

    def __post_init__(self) -> None:
        if self.source_channel and self.datatype != "uint64":
            raise UsageError(f"annotation channels (--source_channel) hold uint64, not {self.datatype}: "
                             "pass --datatype uint64")
        if not self.source_channel and self.datatype not in ("uint8", "uint16", "uint32"):
            raise UsageError(f"image channels hold uint8, uint16 or uint32, not {self.datatype}: give "
                             "--source_channel to create a uint64 annotation channel")
        check_voxel_size(self.voxel_size)
        if self.voxel_unit is not None and self.voxel_unit not in VOXEL_UNITS:
            raise FieldError("voxel_unit", f"{{field}} {self.voxel_unit!r} is not one of {', '.join(VOXEL_UNITS)}")
        if int(self.num_time_samples) < 1:
            raise FieldError("num_time_samples", f"{{field}} {self.num_time_samples} must be at least 1")
        if self.base_resolution < 0:
            raise FieldError("base_resolution", f"{{field}} {self.base_resolution} must not be negative")

    @property
    def new_voxel_size(self) -> tuple[float, float, float]:
        """The voxel size a new coordinate frame gets."""
        return tuple(float(v) for v in self.voxel_size) if self.voxel_size else (1.0, 1.0, 1.0)  # type: ignore[return-value]

    @property
    def new_voxel_unit(self) -> str:
        return self.voxel_unit or "nanometers"

    @property
    def coord_frame(self) -> str:
        return self.frame_name or f"{self.ref.collection}_{self.ref.experiment}"

    @property
    def channel_type(self) -> str:
        return "annotation" if self.source_channel else "image"

    @property
    def levels(self) -> int:
        if self.num_hierarchy_levels:
            return self.num_hierarchy_levels
        widest = max(self.frame.shape[0], self.frame.shape[1])
        return max(1, math.ceil(math.log2(widest / 512)) + 1) if widest > 512 else 1

    @property
    def method(self) -> str:
        return self.hierarchy_method or ("isotropic" if len(set(self.new_voxel_size)) == 1 else "anisotropic")


def check_voxel_size(voxel_size: tuple[float, ...] | None) -> None:
    """FieldError unless three finite positive numbers (or None: not given)."""
    if voxel_size is None:
        return
    shown = " ".join(f"{v:g}" for v in voxel_size)
    if len(voxel_size) != 3 or not all(math.isfinite(v) and v > 0 for v in voxel_size):
        raise FieldError("voxel_size", f"{{field}} {shown}: give three positive numbers, x y z")


def _exists(get: Callable[[], Any]) -> Any:
    try:
        return get()
    except ResourceNotFound:
        return None


def check_frame(frame: CoordFrame, spec: ResourceSpec) -> None:
    """An existing frame must contain the push's frame and have the voxel size and unit it gives."""
    outside = [f"{axis}_{end} {want}" for axis, (lo, hi), (want_lo, want_hi) in
               zip("xyz", zip(frame.box.start, frame.box.stop), zip(spec.frame.start, spec.frame.stop))
               for end, want, ok in (("start", want_lo, want_lo >= lo), ("stop", want_hi, want_hi <= hi)) if not ok]
    if outside:
        raise ResourceMismatch(
            f"coordinate frame {frame.name!r} ({frame.box}) does not reach this push's {', '.join(outside)}: fix "
            "the --x/y/z_extent, --coord_frame_*_extent or offset flags (frames are never changed)")
    want: dict[str, Any] = {}
    if spec.voxel_size is not None:
        want.update({f"{a}_voxel_size": float(v) for a, v in zip("xyz", spec.voxel_size)})
    if spec.voxel_unit is not None:
        want["voxel_unit"] = spec.voxel_unit
    for name, value in want.items():
        have = getattr(frame, name)
        if (not math.isclose(have, value, rel_tol=1e-9)) if isinstance(value, float) else have != value:
            raise ResourceMismatch(
                f"coordinate frame {frame.name!r} exists with {name} {have}, but this push gives {value} "
                "(--voxel_size/--voxel_unit, or a volume's metadata): drop or fix the flags, or give a volume the "
                "frame's (frames are never changed)")


def check_channel_matches(channel: Any, spec: ResourceSpec) -> None:
    if channel.datatype != spec.datatype:
        raise ResourceMismatch(f"channel {spec.ref} exists with datatype {channel.datatype}, but this push needs "
                               f"{spec.datatype}: use --datatype {channel.datatype} or another channel name")
    if channel.type != spec.channel_type:
        raise ResourceMismatch(f"channel {spec.ref} exists as an {channel.type} channel, but this push needs an "
                               f"{spec.channel_type} channel: fix --source_channel or use another channel name")
    if spec.source_channel and spec.source_channel not in channel.sources:
        raise ResourceMismatch(f"annotation channel {spec.ref} exists with sources {list(channel.sources)}, not "
                               f"{spec.source_channel!r}: fix --source_channel")


@dataclass(frozen=True)
class Existing:
    """What the server already holds of a push's resources (None: missing)."""

    collection: Any
    experiment: Any
    frame: Any
    frame_name: str
    channel: Any
    source: Any


def look_up(client: Any, spec: ResourceSpec) -> Existing:
    ref = spec.ref
    experiment = _exists(lambda: client.get_experiment(ref.collection, ref.experiment))
    frame_name = experiment.coord_frame if experiment is not None else spec.coord_frame
    source = None
    if experiment is not None and spec.source_channel:
        source_ref = ChannelRef(ref.collection, ref.experiment, spec.source_channel)
        source = _exists(lambda: client.get_channel(source_ref))
    return Existing(collection=_exists(lambda: client.get_collection(ref.collection)), experiment=experiment,
                    frame=_exists(lambda: client.get_coord_frame(frame_name)), frame_name=frame_name,
                    channel=_exists(lambda: client.get_channel(ref)) if experiment is not None else None,
                    source=source)


def ensure_resources(client: Any, spec: ResourceSpec) -> list[str]:
    """Check everything that exists first, then create what is missing; one line per resource."""
    found = look_up(client, spec)
    if found.frame is not None:
        check_frame(found.frame, spec)
    if found.channel is not None:
        check_channel_matches(found.channel, spec)
    if found.experiment is not None and found.experiment.num_time_samples < spec.num_time_samples:
        raise ResourceMismatch(f"experiment {spec.ref.experiment} has {found.experiment.num_time_samples} time "
                               f"sample(s), but this push writes {spec.num_time_samples}: push fewer with "
                               "--time_range or into a new experiment (experiments are never changed)")
    ref, lines = spec.ref, []
    if found.collection is None:
        client.create_collection(ref.collection)
        lines.append(f"created collection {ref.collection}")
    else:
        lines.append(f"collection {ref.collection} exists")
    lines.append(_ensure_experiment(client, spec, found))
    lines.extend(_ensure_channel(client, spec, found))
    return lines


def _ensure_experiment(client: Any, spec: ResourceSpec, found: Existing) -> str:
    ref, frame_name = spec.ref, found.frame_name
    if found.frame is None:
        client.create_coord_frame(frame_name, spec.frame.x, spec.frame.y, spec.frame.z,
                                  voxel_size=spec.new_voxel_size, voxel_unit=spec.new_voxel_unit)
        made = f"created coordinate frame {frame_name} ({spec.frame})"
    else:
        made = f"coordinate frame {frame_name} matches"
    if found.experiment is None:
        client.create_experiment(ref.collection, ref.experiment, frame_name, num_hierarchy_levels=spec.levels,
                                 hierarchy_method=spec.method, num_time_samples=spec.num_time_samples)
        times = f", {spec.num_time_samples} time samples" if spec.num_time_samples > 1 else ""
        return f"{made}; created experiment {ref.experiment} ({spec.levels} levels, {spec.method}{times})"
    return f"{made}; experiment {ref.experiment} exists"


def _ensure_channel(client: Any, spec: ResourceSpec, found: Existing) -> list[str]:
    ref, lines = spec.ref, []
    if spec.source_channel and found.source is None:
        # as ndex 1.x did: BOSS needs an annotation channel's source to exist
        client.create_channel(ChannelRef(ref.collection, ref.experiment, spec.source_channel), "image", "uint8",
                              base_resolution=spec.base_resolution)
        lines.append(f"created empty source channel {spec.source_channel} (uint8 image) for the annotations")
    if found.channel is None:
        client.create_channel(ref, spec.channel_type, spec.datatype, base_resolution=spec.base_resolution,
                              sources=[spec.source_channel] if spec.source_channel else [])
        lines.append(f"created channel {ref.channel} ({spec.channel_type}, {spec.datatype})")
    else:
        lines.append(f"channel {ref.channel} exists ({found.channel.type}, {found.channel.datatype})")
    return lines


# --- metadata ---------------------------------------------------------------------------------------


def load_metadata(path: str | Path, schema_path: str | Path | None = None) -> dict[str, str]:
    """Key/value metadata from a JSON object file, validated against a JSON Schema file if given.

    Values become strings as BOSS stores them: strings as they are, anything else as JSON.
    """
    data = _read_json(path, "--metadata")
    if not isinstance(data, dict):
        raise UsageError(f"--metadata {path} must hold a JSON object of key/value pairs, not {type(data).__name__}")
    if schema_path is not None:
        validate_metadata(data, _read_json(schema_path, "--metadata_schema"), str(schema_path))
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def validate_metadata(data: Mapping[str, Any], schema: Any, schema_name: str = "the schema") -> None:
    """UsageError naming the first failing key (and why) if `data` does not satisfy `schema`."""
    import jsonschema  # only metadata validation needs it

    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UsageError(f"{schema_name} is not a valid JSON Schema: {exc.message}") from None
    error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(dict(data)))
    if error is None:
        return
    key = ".".join(str(p) for p in error.absolute_path)
    if not key and error.validator == "required":
        key = error.message.split("'")[1] if "'" in error.message else ""
    where = f"metadata key {key!r}" if key else "the metadata"
    raise UsageError(f"{where} does not satisfy {schema_name}: {error.message}")


def _read_json(path: str | Path, flag: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{flag} file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{flag} file {path} is not readable JSON: {exc}") from None


def record_offsets(client: Any, ref: ChannelRef, offsets: tuple[int, int, int]) -> bool:
    """Store non-zero offsets on the experiment as ndex 1.x did (key `offsets`, value `[x, y, z]`)."""
    if not any(offsets):
        return False
    client.set_metadata(ref.collection, ref.experiment, values={OFFSETS_KEY: json.dumps(list(offsets))})
    return True


@dataclass(frozen=True)
class CreateSpec:
    """The resource-creating step of a push: the resources, the offsets to record, the channel's metadata.

    Plain data that round-trips through JSON: `ndex plan` writes it as a plan's create job."""

    resources: ResourceSpec
    offsets: tuple[int, int, int] = (0, 0, 0)
    metadata: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        r = self.resources
        resources = {f: getattr(r, f) for f in r.__dataclass_fields__}
        resources.update(ref=r.ref.path, frame=[list(r.frame.start), list(r.frame.stop)],
                         voxel_size=list(r.voxel_size) if r.voxel_size else None)
        return {"resources": resources, "offsets": list(self.offsets), "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CreateSpec:
        r = dict(data["resources"])
        r.update(ref=ChannelRef.parse(r["ref"]), frame=Box(tuple(r["frame"][0]), tuple(r["frame"][1])),
                 voxel_size=tuple(r["voxel_size"]) if r.get("voxel_size") else None)
        return cls(ResourceSpec(**r), tuple(data.get("offsets", (0, 0, 0))), data.get("metadata"))


def create(client: Any, spec: CreateSpec) -> list[str]:
    """Create or check the resources, record the offsets and attach the metadata; one line per thing done."""
    lines = ensure_resources(client, spec.resources)
    ref = spec.resources.ref
    if record_offsets(client, ref, spec.offsets):
        lines.append(f"stored offsets {list(spec.offsets)} as metadata of experiment {ref.experiment}")
    if spec.metadata:
        client.set_metadata(ref, values=spec.metadata)
        lines.append(f"attached {len(spec.metadata)} metadata key(s) to channel {ref.channel}")
    return lines


# --- downsample -------------------------------------------------------------------------------------

DOWNSAMPLE_TIMEOUT = 24 * 3600.0  # seconds; BossDB builds a terabyte channel in hours, not days

# BOSS answers a downsample POST with 409/2006 when one is queued or running, when the channel is already
# downsampled (non-admins), and when the frame is too large for a non-admin (only the message says so);
# and with 400/1006 when two POSTs race (boss django/bossspatialdb/downsample.py, start and enqueue_job).
_TOO_LARGE_WORDS = ("large downsamples", "admin permission", "too large")


@dataclass(frozen=True)
class DownsampleResult:
    """How a downsample ended: the final status document, and whether it had been built already."""

    ref: ChannelRef
    status: dict
    already: bool = False

    @property
    def line(self) -> str:
        levels = self.status.get("num_hierarchy_levels", "?")
        if self.already:
            return f"downsample of {self.ref}: already downsampled and unchanged since, nothing to do"
        return f"downsample of {self.ref} finished: DOWNSAMPLED ({levels} levels)"


def _start(client: Any, ref: ChannelRef) -> str | None:
    """POST the downsample; None if it started, else what the refusal means: 'active' or 'done'."""
    try:
        client.start_downsample(ref)
        return None
    except (Conflict, BadRequest) as exc:
        if isinstance(exc, BadRequest) and exc.code != 1006:
            raise
        return _refusal(client, ref, exc)


def _refusal(client: Any, ref: ChannelRef, exc: RemoteError) -> str:
    text = exc.message.lower()
    if any(w in text for w in _TOO_LARGE_WORDS):
        raise RemoteError(f"the server refused to downsample {ref}: its frame is larger than non-admin users may "
                          "downsample there; ask the server's administrators to start it", status=exc.status,
                          code=exc.code) from None
    state = client.downsample_status(ref).get("status")
    if state in BUILDING:
        log.info("a downsample of %s was already %s; waiting for it", ref, state)
        return "active"
    if state == DOWNSAMPLED:
        return "done"
    raise RemoteError(f"the server refused to downsample {ref} (status {state}): {exc.message}",
                      status=exc.status, code=exc.code) from None


def downsample(client: Any, ref: ChannelRef, *, progress: Progress | None = None, poll: float = 5.0,
               timeout: float | None = DOWNSAMPLE_TIMEOUT, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> DownsampleResult:
    """Start the server's downsample of `ref` (or join one already queued or running) and wait for its end.

    Refused at once (UsageError) for a channel BOSS cannot downsample; RemoteError if the server
    reports FAILED, the downsample is cancelled (status back to NOT_DOWNSAMPLED) or `timeout` passes.
    """
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--downsample_timeout {timeout:g} must be more than 0 seconds")
    blocker = client.channel_info(ref).downsample_blocker()
    if blocker:
        raise UsageError(f"cannot downsample {ref}: {blocker}; pull resolution 0, or build the pyramid elsewhere")
    progress = progress or NullProgress()
    refused = _start(client, ref)
    status = client.downsample_status(ref) if refused == "done" else _wait(client, ref, progress, poll, timeout,
                                                                             sleep, clock)
    _record(client, ref)
    return DownsampleResult(ref, status, already=refused == "done")


def _wait(client: Any, ref: ChannelRef, progress: Progress, poll: float, timeout: float | None,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> dict:
    deadline = None if timeout is None else clock() + timeout
    last = None
    while True:
        status = client.downsample_status(ref)
        state = status.get("status")
        if state != last:
            progress.note(f"downsample of {ref}: {state} ({status.get('num_hierarchy_levels', '?')} levels)")
            last = state
        if state == DOWNSAMPLED:
            return status
        if state == "FAILED":
            raise RemoteError(f"the server's downsample of {ref} failed: check the server log, then re-run "
                              "with --downsample")
        if state not in BUILDING:  # BOSS's cancel resets the status to NOT_DOWNSAMPLED
            raise RemoteError(f"the downsample of {ref} was cancelled (status {state}): re-run with --downsample "
                              "to start it again")
        if deadline is not None and clock() > deadline:
            raise RemoteError(f"the downsample of {ref} did not finish within {timeout:.0f} s (status {state}); "
                              "it continues on the server: check it later with ndex info")
        sleep(poll)


def _record(client: Any, ref: ChannelRef) -> None:
    """Note the finished pyramid on the channel, so a pull can tell a stale level from one never built."""
    try:
        client.record_pyramid(ref)
    except RemoteError as exc:  # e.g. read-only metadata permission: the pyramid is built all the same
        log.warning("could not record the finished downsample of %s in its metadata: %s", ref, exc)
