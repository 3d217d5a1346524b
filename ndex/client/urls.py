"""Paths and query strings of the BOSS v1 API, exactly as boss-api.md sections 0.2 and 3.1 give them.

Object URLs carry no trailing slash, list and cutout URLs do (as intern sends them). Names reach these
functions already validated (`ChannelRef`, `check_name`), so nothing here needs URL quoting.
"""
from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from ndex.client.models import MAX_RESOLUTION, ChannelRef, check_name
from ndex.errors import InvalidBox, OutOfBounds, UsageError
from ndex.geometry import Box

API = "/v1"


def collections() -> str:
    # intern sends /v1/collection// (a quirk of its URL builder); the single slash is the real route
    return f"{API}/collection/"


def collection(name: str) -> str:
    return f"{API}/collection/{check_name('collection', name)}"


def experiments(coll: str) -> str:
    return f"{collection(coll)}/experiment/"


def experiment(coll: str, name: str) -> str:
    return f"{collection(coll)}/experiment/{check_name('experiment', name)}"


def channels(coll: str, exp: str) -> str:
    return f"{experiment(coll, exp)}/channel/"


def channel(ref: ChannelRef) -> str:
    return f"{experiment(ref.collection, ref.experiment)}/channel/{ref.channel}"


def coord_frames() -> str:
    return f"{API}/coord/"


def coord_frame(name: str) -> str:
    return f"{API}/coord/{check_name('coordinate frame', name)}"


def downsample(ref: ChannelRef) -> str:
    return f"{API}/downsample/{ref.path}"


def metadata(names: tuple[str, ...]) -> str:
    """`/v1/meta/c[/e[/ch]]`: the key listing URL (key operations add a slash and a query)."""
    if not 1 <= len(names) <= 3:
        raise UsageError(f"metadata belongs to a collection, experiment or channel: give 1 to 3 names, "
                         f"not {len(names)}")
    for kind, name in zip(("collection", "experiment", "channel"), names):
        check_name(kind, name)
    return f"{API}/meta/" + "/".join(names)


def metadata_query(key: str, value: object = None) -> str:
    params = {"key": str(key)} if value is None else {"key": str(key), "value": str(value)}
    return urlencode(params)


def ping() -> str:
    return "/ping/"


# --- cutouts ------------------------------------------------------------------------------------------


def check_time_range(time_range: tuple[int, int]) -> tuple[int, int]:
    t0, t1 = (int(t) for t in time_range)
    if t0 < 0 or t0 >= t1:
        raise InvalidBox(f"time range {t0}:{t1} is empty, inverted or negative: give START:STOP with "
                         "0 <= START < STOP")
    return t0, t1


def region(ref: ChannelRef, res: int, box: Box, time_range: tuple[int, int] | None) -> str:
    """`c/e/ch/res/x0:x1/y0:y1/z0:z1/[t0:t1/]`, the part cutout and to_black URLs share."""
    if not 0 <= int(res) <= MAX_RESOLUTION:
        raise OutOfBounds(f"resolution {res} cannot be addressed: BOSS resolutions are 0 to {MAX_RESOLUTION}")
    for axis, lo in zip("xyz", box.start):
        if lo < 0:
            raise OutOfBounds(f"{axis} start {lo} is negative: BOSS cutout URLs cannot address negative "
                              "coordinates")
    time = "" if time_range is None else "{}:{}/".format(*check_time_range(time_range))
    return f"{ref.path}/{int(res)}/{box.url_ranges()}/{time}"


def cutout(ref: ChannelRef, res: int, box: Box, time_range: tuple[int, int] | None = None) -> str:
    return f"{API}/cutout/{region(ref, res, box, time_range)}"


def to_black(ref: ChannelRef, res: int, box: Box, time_range: tuple[int, int] | None = None) -> str:
    return f"{API}/cutout/to_black/{region(ref, res, box, time_range)}"


def cutout_query(*, filter_ids: Iterable[int] | None = None, iso: bool = False, read: bool = True) -> str:
    """`[filter=1,2&][iso=true&]access-mode=no-cache` for reads; only `iso=true` (or nothing) for writes."""
    parts = []
    if filter_ids is not None:
        ids = [int(i) for i in filter_ids]
        if not ids or any(i < 0 for i in ids):
            raise UsageError("filter_ids must be a non-empty list of non-negative annotation ids")
        parts.append("filter=" + ",".join(str(i) for i in ids))
    if iso:
        parts.append("iso=true")
    if read:
        parts.append("access-mode=no-cache")  # a read must see the latest writes, not a cache
    return "&".join(parts)


def cutout_shape(box: Box, time_range: tuple[int, int] | None) -> tuple[int, ...]:
    """Array shape of a cutout: (z, y, x), or (t, z, y, x) when the URL carries a time range."""
    if time_range is None:
        return box.shape_zyx
    t0, t1 = check_time_range(time_range)
    return (t1 - t0, *box.shape_zyx)
