"""`BossClient`: the BOSS v1 API as Python calls, over one pooled, retrying session.

Every method returns parsed values (models, lists, arrays) and raises only `ndex.errors`; success
status codes are the exact ones intern expects (boss-api.md section 10), anything else is an error.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from ndex import __version__, codecs
from ndex.client import urls
from ndex.client._http import ClientStats, Http, Reply, RetryListener
from ndex.client.models import (
    PYRAMID_KEY,
    Channel,
    ChannelInfo,
    ChannelRef,
    Collection,
    CoordFrame,
    Experiment,
    check_name,
)
from ndex.config import Remote
from ndex.errors import AuthError, ResourceNotFound, ServerError, UsageError
from ndex.geometry import Box

JSON = {"Content-Type": "application/json"}
BLOSC = {"Content-Type": "application/blosc"}
BLOSC_READ = {"Content-Type": "application/blosc", "Accept": "application/blosc"}
VOXEL_UNITS = ("nanometers", "micrometers", "millimeters", "centimeters")
HIERARCHY_METHODS = ("anisotropic", "isotropic")
CHANNEL_TYPES = ("image", "annotation")

# What a PUT may change, per kind (boss-api.md 2.3-2.6); anything else the server refuses with a 400.
UPDATABLE = {
    "collection": {"name", "description", "public"},
    "coordinate frame": {"name", "description"},
    "experiment": {"name", "description", "public", "num_hierarchy_levels", "hierarchy_method",
                   "num_time_samples", "time_step", "time_step_unit"},
    "channel": {"name", "description", "public", "default_time_sample", "base_resolution", "sources", "related"},
}


def _choice(kind: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{kind} {value!r} is not valid: use one of {', '.join(choices)}")
    return value


def _update_body(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - UPDATABLE[kind])
    if unknown:
        raise UsageError(f"cannot update {kind} field(s) {', '.join(unknown)}: updatable are "
                         f"{', '.join(sorted(UPDATABLE[kind]))}")
    if "name" in fields:
        check_name(kind, fields["name"])
    return {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in fields.items()}


def _named(data: Any, **names: str) -> Any:
    """A creation answer with its parents named: BOSS's POST serializers give their database ids
    (`"coord_frame": 3`), its GET serializers their names."""
    return {**data, **names} if isinstance(data, dict) else data


def _meta_names(path: tuple[Any, ...]) -> tuple[str, ...]:
    """Metadata owner names; a single ChannelRef stands for its three names."""
    if len(path) == 1 and isinstance(path[0], ChannelRef):
        ref = path[0]
        return ref.collection, ref.experiment, ref.channel
    return tuple(path)


class BossClient:
    """Talks BOSS v1 to `remote`; thread-safe, with a connection pool of `threads` connections."""

    def __init__(self, remote: Remote, *, threads: int = 8, timeout: tuple[float, float] = (10.0, 300.0),
                 retries: int = 6, backoff: float = 0.5, session_factory: Callable[[], Any] | None = None,
                 on_retry: RetryListener | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.remote = remote
        self.http = Http(remote.url, remote.token, threads=threads, timeout=timeout, retries=retries,
                         backoff=backoff, session_factory=session_factory, on_retry=on_retry, sleep=sleep,
                         user_agent=f"ndex/{__version__}")

    def __repr__(self) -> str:
        return f"BossClient({self.remote.url!r})"

    def __enter__(self) -> BossClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @property
    def stats(self) -> ClientStats:
        return self.http.stats

    @contextmanager
    def retry_listener(self, listener: RetryListener) -> Iterator[None]:
        """`listener(what, error)` hears every retry of this client's requests while the block runs."""
        self.http.add_retry_listener(listener)
        try:
            yield
        finally:
            self.http.remove_retry_listener(listener)

    # --- plumbing -------------------------------------------------------------------------------------

    def _json(self, method: str, path: str, payload: Any = None, *, expect: int = 200, query: str = "",
              retries: int | None = None) -> Reply:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        return self.http.request(method, path, expect=(expect,), query=query, body=body, headers=JSON,
                                 retries=retries)

    def _list(self, path: str, key: str, retries: int | None = None) -> list[str]:
        data = self._json("GET", path, retries=retries).json()
        return [str(name) for name in (data.get(key, []) if isinstance(data, dict) else [])]

    def _children(self, path: str, key: str, parent: Callable[[], Any]) -> list[str]:
        """A listing of children. BOSS answers 500, not 404, when the parent is missing: so a 500 is not
        retried before `parent()` has shown that the parent exists (it raises ResourceNotFound if not)."""
        try:
            return self._list(path, key, retries=0)
        except ServerError:
            parent()
            return self._list(path, key)

    def _update(self, kind: str, path: str, fields: Mapping[str, Any]) -> Any:
        return self._json("PUT", path, _update_body(kind, fields)).json()

    def ping(self) -> dict:
        """The server's health answer (`{"ip": ...}` on BOSS); raises if it cannot be reached."""
        return self._json("GET", urls.ping()).json()

    # --- collections ----------------------------------------------------------------------------------

    def list_collections(self) -> list[str]:
        return self._list(urls.collections(), "collections")

    def get_collection(self, name: str) -> Collection:
        return Collection.from_json(self._json("GET", urls.collection(name)).json())

    def create_collection(self, name: str, description: str = "", public: bool = False) -> Collection:
        body = {"name": name, "description": description, "public": public}
        return Collection.from_json(self._json("POST", urls.collection(name), body, expect=201).json())

    def update_collection(self, name: str, /, **fields: Any) -> Collection:
        return Collection.from_json(self._update("collection", urls.collection(name), fields))

    def delete_collection(self, name: str) -> None:
        self._json("DELETE", urls.collection(name), expect=204)

    # --- experiments ----------------------------------------------------------------------------------

    def list_experiments(self, coll: str) -> list[str]:
        return self._children(urls.experiments(coll), "experiments", lambda: self.get_collection(coll))

    def get_experiment(self, coll: str, name: str) -> Experiment:
        return Experiment.from_json(self._json("GET", urls.experiment(coll, name)).json())

    def create_experiment(self, coll: str, name: str, coord_frame: str, *, description: str = "",
                          num_hierarchy_levels: int = 1, hierarchy_method: str = "anisotropic",
                          num_time_samples: int = 1, time_step: int = 0, time_step_unit: str = "seconds",
                          public: bool = False) -> Experiment:
        # time_step and its unit are always sent: intern cannot parse an experiment whose unit is null
        body = {"name": name, "description": description, "collection": coll,
                "coord_frame": check_name("coordinate frame", coord_frame),
                "num_hierarchy_levels": int(num_hierarchy_levels),
                "hierarchy_method": _choice("hierarchy method", hierarchy_method, HIERARCHY_METHODS),
                "num_time_samples": int(num_time_samples), "time_step": time_step,
                "time_step_unit": time_step_unit, "public": public}
        created = self._json("POST", urls.experiment(coll, name), body, expect=201).json()
        return Experiment.from_json(_named(created, collection=coll, coord_frame=coord_frame))

    def update_experiment(self, coll: str, name: str, /, **fields: Any) -> Experiment:
        return Experiment.from_json(self._update("experiment", urls.experiment(coll, name), fields))

    def delete_experiment(self, coll: str, name: str) -> None:
        self._json("DELETE", urls.experiment(coll, name), expect=204)

    # --- channels -------------------------------------------------------------------------------------

    def list_channels(self, coll: str, exp: str) -> list[str]:
        return self._children(urls.channels(coll, exp), "channels", lambda: self.get_experiment(coll, exp))

    def get_channel(self, ref: ChannelRef) -> Channel:
        return Channel.from_json(self._json("GET", urls.channel(ref)).json())

    def create_channel(self, ref: ChannelRef, type: str, datatype: str, sources: Iterable[str] = (),
                       related: Iterable[str] = (), description: str = "", base_resolution: int = 0,
                       default_time_sample: int = 0) -> Channel:
        _choice("channel type", type, CHANNEL_TYPES)
        _choice("channel datatype", datatype, tuple(codecs.SUPPORTED_DTYPES))
        body = {"name": ref.channel, "description": description, "type": type, "datatype": datatype,
                "base_resolution": int(base_resolution), "default_time_sample": int(default_time_sample),
                "sources": [check_name("source channel", s) for s in sources],
                "related": [check_name("related channel", r) for r in related]}
        created = self._json("POST", urls.channel(ref), body, expect=201).json()
        return Channel.from_json(_named(created, experiment=ref.experiment))

    def update_channel(self, ref: ChannelRef, /, **fields: Any) -> Channel:
        """PUT the given fields. BOSS clears `sources`/`related` a PUT omits, so the current ones are
        fetched and resent unless given."""
        if "sources" not in fields or "related" not in fields:
            current = self.get_channel(ref)
            fields = {"sources": current.sources, "related": current.related, **fields}
        return Channel.from_json(self._update("channel", urls.channel(ref), fields))

    def delete_channel(self, ref: ChannelRef) -> None:
        self._json("DELETE", urls.channel(ref), expect=204)

    def channel_info(self, ref: ChannelRef) -> ChannelInfo:
        """The channel with its experiment and coordinate frame (three GETs)."""
        channel = self.get_channel(ref)
        experiment = self.get_experiment(ref.collection, ref.experiment)
        return ChannelInfo(ref, channel, experiment, self.get_coord_frame(experiment.coord_frame))

    # --- coordinate frames ----------------------------------------------------------------------------

    def list_coord_frames(self) -> list[str]:
        return self._list(urls.coord_frames(), "coords")

    def get_coord_frame(self, name: str) -> CoordFrame:
        return CoordFrame.from_json(self._json("GET", urls.coord_frame(name)).json())

    def create_coord_frame(self, name: str, x: tuple[int, int], y: tuple[int, int], z: tuple[int, int],
                           voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0),
                           voxel_unit: str = "nanometers", description: str = "") -> CoordFrame:
        box = Box.from_ranges(x, y, z)  # rejects empty or inverted ranges before the server sees them
        body: dict[str, Any] = {"name": name, "description": description,
                                "voxel_unit": _choice("voxel unit", voxel_unit, VOXEL_UNITS)}
        for axis, lo, hi, size in zip("xyz", box.start, box.stop, voxel_size):
            body.update({f"{axis}_start": lo, f"{axis}_stop": hi, f"{axis}_voxel_size": float(size)})
        return CoordFrame.from_json(self._json("POST", urls.coord_frame(name), body, expect=201).json())

    def update_coord_frame(self, name: str, /, **fields: Any) -> CoordFrame:
        return CoordFrame.from_json(self._update("coordinate frame", urls.coord_frame(name), fields))

    def delete_coord_frame(self, name: str) -> None:
        self._json("DELETE", urls.coord_frame(name), expect=204)

    # --- downsampling ---------------------------------------------------------------------------------

    def downsample_status(self, ref: ChannelRef, iso: bool = False) -> dict:
        """`{"status", "num_hierarchy_levels", "voxel_size", "extent", "cuboid_size"}` (boss-api.md 5.1)."""
        return self._json("GET", urls.downsample(ref), query="iso=true" if iso else "").json()

    def start_downsample(self, ref: ChannelRef) -> None:
        self._json("POST", urls.downsample(ref), expect=201)

    def cancel_downsample(self, ref: ChannelRef) -> None:
        self._json("DELETE", urls.downsample(ref), expect=204)

    def pyramid_recorded(self, ref: ChannelRef) -> bool:
        """Whether ndex recorded a finished downsample of `ref` (BOSS's status forgets it on the next write)."""
        try:
            return PYRAMID_KEY in self.list_metadata(ref)
        except (ResourceNotFound, AuthError):
            return False

    def record_pyramid(self, ref: ChannelRef) -> None:
        """Note on the channel that its downsample finished now (`pyramid_recorded` reads it)."""
        self.set_metadata(ref, values={PYRAMID_KEY: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    # --- metadata (path: collection[, experiment[, channel]] names, or one ChannelRef) ----------------

    def list_metadata(self, *path: Any) -> list[str]:
        return self._list(urls.metadata(_meta_names(path)), "keys")

    def get_metadata(self, *path: Any, key: str) -> str:
        url = urls.metadata(_meta_names(path)) + "/"
        data = self._json("GET", url, query=urls.metadata_query(key)).json()
        return str(data.get("value", "")) if isinstance(data, dict) else ""

    def create_metadata(self, *path: Any, key: str, value: Any) -> None:
        url = urls.metadata(_meta_names(path)) + "/"
        self._json("POST", url, query=urls.metadata_query(key, value), expect=201)

    def update_metadata(self, *path: Any, key: str, value: Any) -> None:
        url = urls.metadata(_meta_names(path)) + "/"
        self._json("PUT", url, query=urls.metadata_query(key, value), expect=200)

    def delete_metadata(self, *path: Any, key: str) -> None:
        url = urls.metadata(_meta_names(path)) + "/"
        self._json("DELETE", url, query=urls.metadata_query(key), expect=204)

    def set_metadata(self, *path: Any, values: Mapping[str, Any]) -> None:
        """Create each key that is missing and update each that exists."""
        existing = set(self.list_metadata(*path))
        for key, value in values.items():
            if key in existing:
                self.update_metadata(*path, key=key, value=value)
            else:
                self.create_metadata(*path, key=key, value=value)

    # --- cutouts --------------------------------------------------------------------------------------

    def get_cutout(self, ref: ChannelRef, res: int, box: Box, dtype: Any, *,
                   time_range: tuple[int, int] | None = None, iso: bool = False,
                   filter_ids: Iterable[int] | None = None) -> np.ndarray:
        """The voxels of `box` at level `res` as (z, y, x), or (t, z, y, x) when time_range is given.

        A body that is cut off, undecodable or of the wrong size is fetched again (CorruptBody).
        """
        dt, shape = np.dtype(dtype), urls.cutout_shape(box, time_range)
        reply = self.http.request("GET", urls.cutout(ref, res, box, time_range), headers=BLOSC_READ,
                                  query=urls.cutout_query(filter_ids=filter_ids, iso=iso),
                                  decode=lambda body: codecs.decode(body, dt, shape))
        return reply.value

    def post_cutout(self, ref: ChannelRef, res: int, box: Box, data: np.ndarray, *,
                    time_range: tuple[int, int] | None = None, iso: bool = False) -> None:
        """Write `data` ((z, y, x), or (t, z, y, x) with time_range) into `box`; zeros leave stored voxels."""
        shape = urls.cutout_shape(box, time_range)
        if tuple(data.shape) != shape:
            order = "(z, y, x)" if time_range is None else "(t, z, y, x)"
            raise UsageError(f"data of shape {tuple(data.shape)} does not fit {box}"
                             f"{'' if time_range is None else ' t {}:{}'.format(*time_range)}: "
                             f"it must be {order} = {shape}")
        if data.dtype.name not in codecs.SUPPORTED_DTYPES:
            raise UsageError(f"data of dtype {data.dtype.name} cannot be posted: BOSS channels hold "
                             f"{', '.join(codecs.SUPPORTED_DTYPES)} (convert with --force_datatype or astype)")
        self.http.request("POST", urls.cutout(ref, res, box, time_range), expect=(201,), headers=BLOSC,
                          query=urls.cutout_query(iso=iso, read=False), body=codecs.encode(data))

    def cutout_to_black(self, ref: ChannelRef, res: int, box: Box, time_range: tuple[int, int] | None = None,
                        *, iso: bool = False) -> None:
        """Set every voxel of `box` (and of each time sample in time_range) to 0."""
        self.http.request("PUT", urls.to_black(ref, res, box, time_range), expect=(200,), headers=BLOSC,
                          query=urls.cutout_query(iso=iso, read=False))
