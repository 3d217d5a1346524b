"""Shared values of the client tests (a uniquely named module, so that it never shadows another conftest)."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import blosc
import numpy as np

TOKEN = "0123456789abcdef0123456789abcdef01234567"  # shaped like a real DRF token: 40 hex chars
BASE = "http://boss.test"
CUTOUT = re.compile(r"^/v1/cutout/(?P<path>\w+/\w+/\w+)/(?P<res>\d)/(?P<x>\d+:\d+)/(?P<y>\d+:\d+)/"
                    r"(?P<z>\d+:\d+)/(?:(?P<t>\d+:\d+)/)?$")


def span(text: str) -> slice:
    lo, hi = (int(v) for v in text.split(":"))
    return slice(lo, hi)


class FakeVolume:
    """A BOSS cutout endpoint over one small in-memory (t, z, y, x) array, as a `responses` callback.

    It decodes posted blosc bodies independently of ndex.codecs (plain python-blosc, as BOSS does),
    checks every URL against the wire rules, and records what it saw.
    """

    def __init__(self, dtype, shape_tzyx=(4, 32, 48, 64), default_time_sample=0):
        self.data = np.zeros(shape_tzyx, dtype=dtype)
        self.default_time_sample = default_time_sample
        self.seen: list[tuple[str, str, dict]] = []

    def region(self, request):
        parts = urlsplit(request.url)
        match = CUTOUT.match(parts.path)
        assert match, f"not a cutout URL: {parts.path}"
        t = span(match["t"]) if match["t"] else slice(self.default_time_sample, self.default_time_sample + 1)
        index = (t, span(match["z"]), span(match["y"]), span(match["x"]))
        self.seen.append((request.method, parts.path, parse_qs(parts.query)))
        return index, match["t"] is not None, parts.query

    def __call__(self, request):
        index, four_d, query = self.region(request)
        shape = tuple(s.stop - s.start for s in index)
        if request.method == "POST":
            assert query == "" and request.headers["Content-Type"] == "application/blosc"
            raw = blosc.decompress(request.body)
            posted = np.frombuffer(raw, dtype=self.data.dtype).reshape(shape)
            target = self.data[index]
            target[posted != 0] = posted[posted != 0]  # BOSS's merge: zeros leave stored voxels alone
            return 201, {}, b""
        assert query.endswith("access-mode=no-cache"), query
        assert request.headers["Accept"] == "application/blosc"
        out = self.data[index] if four_d else self.data[index][0]
        return 200, {"Content-Type": "application/blosc"}, blosc.compress(np.ascontiguousarray(out).tobytes(),
                                                                           typesize=out.dtype.itemsize)
