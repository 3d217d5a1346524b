"""A sidecar JSON recording which z-slabs a previous run finished, so a resumed pull skips them.

The ledger also stores a fingerprint of the output (region, dtype, time points, ...): a ledger
written for another request is ignored instead of mixing two different pulls in one file.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from ndex.geometry import Box
from ndex.sinks._files import read_json, remove, write_json

log = logging.getLogger(__name__)


class SlabLedger:
    """Finished z-slabs, kept as `[z0, z1]` pairs in `path`; `mark` is thread-safe and atomic."""

    def __init__(self, path: Path, fingerprint: dict) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self._done: set[tuple[int, int]] = set()
        self._lock = threading.Lock()

    def load(self) -> bool:
        """Read a previous run's record; False (and an empty ledger) if there is none or it differs."""
        saved = read_json(self.path)
        if saved is None:
            return False
        if saved.get("fingerprint") != self.fingerprint:
            log.warning("ignoring %s: it records a different pull (%s)", self.path, saved.get("fingerprint"))
            return False
        self._done = {(int(z0), int(z1)) for z0, z1 in saved.get("slabs", [])}
        return True

    def completed(self, slabs: list[Box]) -> set[Box]:
        with self._lock:
            return {s for s in slabs if s.z in self._done}

    def is_done(self, slab: Box) -> bool:
        with self._lock:
            return slab.z in self._done

    def mark(self, slab: Box) -> None:
        self._update(slab.z, add=True)

    def unmark(self, slab: Box) -> None:
        self._update(slab.z, add=False)

    def save(self) -> None:
        with self._lock:
            self._save()

    def _update(self, z: tuple[int, int], *, add: bool) -> None:
        with self._lock:
            (self._done.add if add else self._done.discard)(z)
            self._save()

    def _save(self) -> None:
        write_json(self.path, {"fingerprint": self.fingerprint, "slabs": sorted(self._done)})

    def remove(self) -> None:
        remove(self.path)
