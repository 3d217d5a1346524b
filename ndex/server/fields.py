"""Field tables of the four resource kinds (boss-api.md 2.3-2.6) and the validation of JSON bodies.

A body is checked once, at the edge, into a plain dict of clean values; every problem becomes one
400/1003 naming the field and what it accepts.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ndex.geometry import VOXEL_UNITS as BOSS_VOXEL_UNITS
from ndex.server.http_errors import invalid
from ndex.server.layout import STORABLE_DTYPES
from ndex.server.values import INT32_MAX, MAX_EXTENT, MAX_TEXT, check_text

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")
MAX_DESCRIPTION = 4096
# Upper bounds, so that one request cannot make thousands of arrays or numbers no column holds (SECURITY.md)
MAX_LEVELS = 10  # a cutout URL names its resolution with one digit, as BOSS's does: 0..9
MAX_TIME_SAMPLES = 2**20
MAX_VOXEL_SIZE = 1e9  # a kilometre in nanometres; scaled by 2**level it stays finite
MAX_LINKS = 256  # names in a channel's sources or related
VOXEL_UNITS = tuple(BOSS_VOXEL_UNITS)
TIME_UNITS = ("nanoseconds", "microseconds", "milliseconds", "seconds", "")
STATUSES = ("NOT_DOWNSAMPLED", "QUEUED", "IN_PROGRESS", "DOWNSAMPLED", "FAILED")
DATATYPES = STORABLE_DTYPES  # BOSS's channel datatypes, uint32 included


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # str | int | float | bool | names
    default: Any = None
    required: bool = False
    choices: tuple = ()
    nullable: bool = False
    put: bool = True  # writable by PUT
    minimum: int | None = None
    maximum: int | float | None = None
    magnitude: int = INT32_MAX  # an int field's bound either side of zero: what its column holds


def _f(name, type_, default=None, **kw) -> Field:
    return Field(name, type_, default, **kw)


DESCRIPTION, PUBLIC = _f("description", "str", ""), _f("public", "bool", False)
FIELDS: dict[str, tuple[Field, ...]] = {
    "collection": (DESCRIPTION, PUBLIC),
    "frame": (DESCRIPTION,
              *(_f(f"{a}_{b}", "int", required=True, put=False, magnitude=MAX_EXTENT)
                for a in "xyz" for b in ("start", "stop")),
              *(_f(f"{a}_voxel_size", "float", required=True, put=False, maximum=MAX_VOXEL_SIZE) for a in "xyz"),
              _f("voxel_unit", "str", required=True, choices=VOXEL_UNITS, put=False)),
    "experiment": (DESCRIPTION, PUBLIC,
                   _f("coord_frame", "str", required=True, put=False),
                   _f("num_hierarchy_levels", "int", 1, minimum=1, maximum=MAX_LEVELS),
                   _f("hierarchy_method", "str", "anisotropic", choices=("anisotropic", "isotropic")),
                   _f("num_time_samples", "int", 1, minimum=1, maximum=MAX_TIME_SAMPLES),
                   _f("time_step", "int", None, nullable=True, minimum=0),
                   _f("time_step_unit", "str", None, nullable=True, choices=TIME_UNITS)),
    "channel": (DESCRIPTION, PUBLIC,
                _f("type", "str", required=True, choices=("image", "annotation"), put=False),
                _f("datatype", "str", required=True, choices=DATATYPES, put=False),
                _f("default_time_sample", "int", 0, minimum=0, maximum=MAX_TIME_SAMPLES - 1),
                _f("base_resolution", "int", 0, minimum=0, maximum=MAX_LEVELS - 1),
                _f("sources", "names", ()),
                _f("related", "names", ()),
                _f("downsample_status", "str", "NOT_DOWNSAMPLED", choices=STATUSES, put=False),
                _f("storage_type", "str", "spdb", choices=("spdb",)),
                _f("bucket", "str", None, nullable=True),
                _f("cv_path", "str", None, nullable=True)),
}
# keys a client may send that the server fills itself (the URL names the object and its parents)
IGNORED_ON_POST = {
    "collection": {"name", "creator", "experiments"},
    "frame": {"name", "creator"},
    "experiment": {"name", "creator", "collection", "channels"},
    "channel": {"name", "creator", "experiment"},
}


def check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):  # match() would let "name\n" through
        raise invalid(f"{what} {str(name)[:80]!r} is invalid: use 1-255 letters, digits, '_' or '-'")
    return name


def require_object(body: Any) -> dict:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def clean_post(kind: str, body: Any) -> dict:
    """Every field of `kind` from a POST body, defaults filled; unknown keys refused."""
    body = require_object(body)
    known = {f.name for f in FIELDS[kind]}
    unknown = sorted(set(body) - known - IGNORED_ON_POST[kind])
    if unknown:
        raise invalid(f"unknown field(s) {', '.join(unknown)} for a {kind}: the accepted ones are {', '.join(sorted(known))}")
    out = {}
    for f in FIELDS[kind]:
        if f.name in body:
            out[f.name] = coerce(f, body[f.name])
        elif f.required:
            raise invalid(f"{f.name} is required to create a {kind}")
        else:
            out[f.name] = f.default
    return out


def clean_put(kind: str, body: Any) -> dict:
    """The fields a PUT body changes ('name' = rename); read-only or unknown keys refused (collections ignore them)."""
    body = require_object(body)
    writable = {f.name: f for f in FIELDS[kind] if f.put}
    bad = sorted(k for k in body if k != "name" and k not in writable)
    if bad and kind != "collection":
        raise invalid(f"field(s) {', '.join(bad)} cannot be changed on a {kind}: writable are "
                      f"name, {', '.join(sorted(writable))}")
    out = {k: coerce(writable[k], v) for k, v in body.items() if k in writable}
    if "name" in body:
        out["name"] = check_name(body["name"], "new name")
    return out


def coerce(f: Field, value: Any) -> Any:
    if value is None:
        if f.nullable:
            return None
        raise invalid(f"{f.name} may not be null")
    checked: Any = _TYPES[f.type](f, value)
    if f.choices and checked not in f.choices:
        raise invalid(f"{f.name} {checked!r} is not one of {', '.join(repr(c) for c in f.choices)}")
    if f.minimum is not None and checked < f.minimum:
        raise invalid(f"{f.name} must be >= {f.minimum}, got {checked}")
    if f.maximum is not None and checked > f.maximum:
        raise invalid(f"{f.name} must be <= {f.maximum:g}, got {checked}")
    return checked


def _as_str(f: Field, v: Any) -> str:
    return check_text(v, f.name, MAX_DESCRIPTION if f.name == "description" else MAX_TEXT)


def _as_int(f: Field, v: Any) -> int:
    # a float must be finite before int() (int(inf) raises); the column bounds the magnitude
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or int(v) != v:
        raise invalid(f"{f.name} must be an integer, got {str(v)[:40]}")
    if abs(int(v)) > f.magnitude:
        raise invalid(f"{f.name} {str(v)[:40]} is out of range: at most {f.magnitude} in magnitude")
    return int(v)


def _as_float(f: Field, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise invalid(f"{f.name} must be a positive finite number, got {str(v)[:40]}")
    return float(v)


def _as_bool(f: Field, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise invalid(f"{f.name} must be true or false, got {v!r}")


def _as_names(f: Field, v: Any) -> tuple[str, ...]:
    if not isinstance(v, (list, tuple)) or len(v) > MAX_LINKS or not all(isinstance(n, str) for n in v):
        raise invalid(f"{f.name} must be a list of at most {MAX_LINKS} channel names, got {str(v)[:80]}")
    return tuple(check_text(n, f"a name in {f.name}") for n in dict.fromkeys(v))


_TYPES = {"str": _as_str, "int": _as_int, "float": _as_float, "bool": _as_bool, "names": _as_names}
