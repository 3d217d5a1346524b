"""A sidecar JSON recording which z-slabs (and bands of slabs) a previous run finished, so a resumed pull skips them.

The finished z ranges are kept merged into runs (`[[z0, z1], ...]`): slabs finish mostly in
order, so the file stays a few bytes however many slabs a multi-day pull has, and rewriting it
atomically after every slab stays cheap. The ledger also stores a fingerprint of the output
(region, dtype, time points, ...): a ledger written for another request is ignored instead of
mixing two different pulls in one output.

Bands. A slab is written band by band (parts of its XY extent on the server's cuboid grid); a slab
that is only partly done keeps the cuboid cells of its finished bands, numbered row by row over the
region and merged into runs the same way, until its last band turns it into a finished z range. Done
is a property of cells, not of the bands that made them, so a re-run that cuts other bands (another
--max_memory) still skips exactly what is written.
"""
from __future__ import annotations

import bisect
import logging
import threading
from pathlib import Path

from ndex.errors import SinkError
from ndex.geometry import BOSS_CUBOID, Box, align_down, ceil_div
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


def cell_runs(region: Box, box: Box) -> list[Run]:
    """The cuboid cells of `region`'s XY grid that `box` covers, as runs of their row-major numbers."""
    cx, cy = BOSS_CUBOID[0], BOSS_CUBOID[1]
    gx, gy = align_down(region.x[0], cx), align_down(region.y[0], cy)
    columns = ceil_div(region.x[1] - gx, cx)
    first, last = (box.x[0] - gx) // cx, ceil_div(box.x[1] - gx, cx)
    runs: list[Run] = []
    for row in range((box.y[0] - gy) // cy, ceil_div(box.y[1] - gy, cy)):
        runs = add_run(runs, (row * columns + first, row * columns + last))
    return runs


class SlabLedger:
    """Finished z-slabs (and bands of unfinished ones) of one output, saved in `path`; thread-safe and atomic.

    `region` is the output's box: it numbers the cells of a band. A box whose XY extent is the whole
    region is a slab; any other is a band of the slab with its z range.
    """

    def __init__(self, path: Path, fingerprint: dict, region: Box | None = None) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.region = region
        self._runs: list[Run] = []
        self._cells: dict[Run, list[Run]] = {}  # z range of an unfinished slab -> runs of its finished cells
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
        for key, runs in saved.get("bands", {}).items():
            self._cells[_z_of(key)] = [(int(a), int(b)) for a, b in runs]
        return True

    def completed(self, slabs: list[Box]) -> set[Box]:
        """The boxes of `slabs` (whole slabs or bands) that are written."""
        with self._lock:
            return {s for s in slabs if self._done(s)}

    def is_done(self, slab: Box) -> bool:
        with self._lock:
            return self._done(slab)

    def _done(self, box: Box) -> bool:
        if covers(self._runs, box.z):
            return True
        cells = self._cells.get(box.z)
        return cells is not None and self.region is not None and all(
            covers(cells, run) for run in cell_runs(self.region, box))

    def mark_band(self, band: Box) -> bool:
        """Record `band` of its slab as written; True when that completes the slab (then recorded as a slab)."""
        with self._lock:
            assert self.region is not None, "a ledger of bands needs the output's region"
            cells = self._cells.get(band.z, [])
            for run in cell_runs(self.region, band):
                cells = add_run(cells, run)
            whole = cell_runs(self.region, self.region)
            if all(covers(cells, run) for run in whole):
                self._cells.pop(band.z, None)
                self._runs = add_run(self._runs, band.z)
            else:
                self._cells[band.z] = cells
            self._save()
            return band.z not in self._cells

    def require_all(self, slabs: list[Box], output: Path) -> None:
        """SinkError unless every slab is done: finish() must never publish a volume with holes."""
        missing = [s for s in slabs if not self.is_done(s)]
        if missing:
            raise SinkError(f"{len(missing)} of {len(slabs)} z-slabs of {output} were never written "
                            f"(first: {missing[0]}): run the pull again to fill them in")

    def mark(self, slab: Box) -> None:
        with self._lock:
            self._runs = add_run(self._runs, slab.z)
            self._cells.pop(slab.z, None)
            self._save()

    def unmark(self, slab: Box) -> None:
        with self._lock:
            self._runs = remove_run(self._runs, slab.z)
            self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        write_json(self.path, {"fingerprint": self.fingerprint, "done": [list(r) for r in self._runs],
                               "bands": {f"{z0}-{z1}": [list(r) for r in runs]
                                         for (z0, z1), runs in self._cells.items()}})

    def remove(self) -> None:
        remove(self.path)


def _z_of(key: str) -> Run:
    z0, z1 = key.split("-")
    return int(z0), int(z1)
