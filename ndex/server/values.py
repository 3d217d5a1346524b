"""What a value from outside may be, checked once at the edge: JSON bodies, integers and text.

Every route takes its JSON through `parse_json` and its integers from paths and query strings through
`ascii_int`, so a value the database or the store cannot hold is a 400 before anything is saved:
non-finite floats, lone surrogates, NUL, text longer than its column, integers outside their column
(signed 32-bit unless named below), and nesting deeper than any real body.
"""
from __future__ import annotations

import json
import math
from typing import Any

from ndex.server.http_errors import INVALID_POST_ARGUMENT, BossError, invalid

INT32_MAX = 2**31 - 1  # an INTEGER column on PostgreSQL (and BOSS's Django IntegerField)
INT64_MAX = 2**63 - 1  # a BIGINT column; no integer in a body may be larger in magnitude
# A voxel coordinate (frame extents, cutout ranges, image indices) lies within +-MAX_EXTENT: frames far
# deeper than 2**31 (BIGINT columns). tensorstore creates a (t, 2**40, 2**40, 2**40) array lazily and
# writes its far corner, but at 2**48 its offset x byte-stride arithmetic overflows int64.
MAX_EXTENT = 2**40
MAX_ID = INT64_MAX  # the reserve-ids counter (BIGINT); BOSS's ids are uint64, SQL holds signed 64-bit
MAX_JSON_DEPTH = 16  # resource and permission bodies are two levels deep
MAX_TEXT = 255  # a name or short text column (schema.NAME)
MAX_LONG_TEXT = 65536  # a description or a metadata value (TEXT columns)


def parse_json(raw: bytes) -> Any:
    """The JSON value of `raw`, refused as 400/1003 unless every number is finite and every string clean."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise invalid(f"the JSON body is nested too deeply: at most {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"the request body is not valid JSON ({exc}): send a JSON object") from None
    _check_tree(value)
    return value


def _no_constant(name: str) -> float:
    raise invalid(f"{name} is not a number this server stores: send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise invalid(f"{text[:40]} overflows a 64-bit float: send a finite number")
    return value


def _check_tree(value: Any) -> None:
    """Depth, strings and integers of a parsed body, walked without recursion."""
    todo = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if depth > MAX_JSON_DEPTH:
            raise invalid(f"the JSON body is nested too deeply: at most {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                check_text(key, "a JSON key", MAX_TEXT)
                todo.append((child, depth + 1))
        elif isinstance(item, list):
            todo.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_text(item, "a JSON string", MAX_LONG_TEXT)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > INT64_MAX:
            raise invalid(f"the integer {str(item)[:40]}... is too large: at most {INT64_MAX} in magnitude")


def check_text(text: Any, what: str, max_len: int = MAX_TEXT) -> str:
    """`text` if it is a string a database column holds as given: valid UTF-8, no NUL, not too long."""
    if not isinstance(text, str):
        raise invalid(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > max_len:
        raise invalid(f"{what} is {len(text)} characters long: at most {max_len}")
    if "\x00" in text:
        raise invalid(f"{what} contains a NUL character: remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{what} contains a lone surrogate (half of a UTF-16 pair): send valid Unicode") from None
    return text


def ascii_int(text: str, what: str, lo: int = 0, hi: int = INT32_MAX, code: int = INVALID_POST_ARGUMENT) -> int:
    """An integer from a path or query segment: ASCII digits only (`str.isdigit` also passes '²' and
    Arabic-Indic digits) and within lo..hi, else 400 with `code`."""
    if not (isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 20):
        raise BossError(code, f"{what} {str(text)[:40]!r} must be a non-negative integer in ASCII digits")
    value = int(text)
    if not lo <= value <= hi:
        raise BossError(code, f"{what} {value} is out of range: use {lo}..{hi}")
    return value
