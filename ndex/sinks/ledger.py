"""A sidecar JSON recording which z-slabs a previous run finished, so a resumed pull skips them.

The finished z ranges are kept merged into runs (`[[z0, z1], ...]`): slabs finish mostly in
order, so the file stays a few bytes however many slabs a multi-day pull has, and rewriting it
atomically after every slab stays cheap. The ledger also stores a fingerprint of the output
(region, dtype, time points, ...): a ledger written for another request is ignored instead of
mixing two different pulls in one output.
"""
from __future__ import annotations

import bisect
import logging
import threading
from pathlib import Path

from ndex.errors import SinkError
from ndex.geometry import Box
from ndex.sinks._files import read_json, remove, write_json

log = logging.getLogger(__name__)

Run = tuple[int, int]


def add_run(runs: list[Run], new: Run) -> list[Run]:
    """`runs` (sorted, disjoint, half-open) with `new` added, touching runs merged."""
    lo, hi = new
    keep = [r for r in runs if r[1] < lo or r[0] > hi]
    touched = [r for r in runs if not (r[1] < lo or r[0] > hi)]
    merged = (min([lo] + [r[0] for r in touched]), max([hi] + [r[1] for r in touched]))
    return sorted(keep + [merged])


def remove_run(runs: list[Run], gone: Run) -> list[Run]:
    """`runs` with the range `gone` cut out."""
    lo, hi = gone
    out: list[Run] = []
    for a, b in runs:
        out += [(a, min(b, lo))] if a < lo else []
        out += [(max(a, hi), b)] if b > hi else []
    return [r for r in out if r[0] < r[1]]


def covers(runs: list[Run], z: Run) -> bool:
    i = bisect.bisect_right(runs, (z[0], float("inf"))) - 1
    return i >= 0 and runs[i][0] <= z[0] and z[1] <= runs[i][1]


class SlabLedger:
    """Finished z-slabs of one output, saved in `path`; every change is thread-safe and atomic."""

    def __init__(self, path: Path, fingerprint: dict) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self._runs: list[Run] = []
        self._lock = threading.Lock()

    def load(self) -> bool:
        """Read a previous run's record; False (and an empty ledger) if there is none or it differs."""
        saved = read_json(self.path)
        if saved is None:
            return False
        if saved.get("fingerprint") != self.fingerprint:
            log.warning("ignoring %s: it records a different pull (%s)", self.path, saved.get("fingerprint"))
            return False
        for z0, z1 in saved.get("done", []):
            self._runs = add_run(self._runs, (int(z0), int(z1)))
        return True

    def completed(self, slabs: list[Box]) -> set[Box]:
        with self._lock:
            return {s for s in slabs if covers(self._runs, s.z)}

    def is_done(self, slab: Box) -> bool:
        with self._lock:
            return covers(self._runs, slab.z)

    def require_all(self, slabs: list[Box], output: Path) -> None:
        """SinkError unless every slab is done: finish() must never publish a volume with holes."""
        missing = [s for s in slabs if not self.is_done(s)]
        if missing:
            raise SinkError(f"{len(missing)} of {len(slabs)} z-slabs of {output} were never written "
                            f"(first: {missing[0]}): run the pull again to fill them in")

    def mark(self, slab: Box) -> None:
        with self._lock:
            self._runs = add_run(self._runs, slab.z)
            self._save()

    def unmark(self, slab: Box) -> None:
        with self._lock:
            self._runs = remove_run(self._runs, slab.z)
            self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        write_json(self.path, {"fingerprint": self.fingerprint, "done": [list(r) for r in self._runs]})

    def remove(self) -> None:
        remove(self.path)
