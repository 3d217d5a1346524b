"""Outputs that hold several resolution levels in one directory (OME-Zarr, precomputed).

A pyramid is written level by level: the engine pulls each level through `pyramid.levels[i]`, a Sink
that places blocks in that level's array and records its finished slabs in the level's own ledger
(`<name>.progress.json` beside the output for the first level, `<name>.progress.<i>.json` for the
others). The directory is `<name>.partial` until `finish()`, which checks that every level is
complete, then renames it. Resume: a level whose ledger matches (same region, dtype, format, ...)
and whose array exists continues; any other level starts over; if no level matches, the whole
directory does.

A pyramid of one level is also a Sink itself (the methods below delegate to its only level), so a
single-level pull opens it like any other output.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from ndex.geometry import Box, z_slabs
from ndex.sinks._files import disk_error, make_dir, partial_of, publish, remove, tensorstore_oserror
from ndex.sinks.base import OutputSpec
from ndex.sinks.layout import conform, fingerprint, time_index
from ndex.sinks.ledger import SlabLedger

log = logging.getLogger(__name__)
T = TypeVar("T")


class Level:
    """The Sink of one level of a pyramid: blocks go to the pyramid's array `index`."""

    supports_partial_writes = True

    def __init__(self, pyramid: Pyramid, index: int, spec: OutputSpec, ledger: SlabLedger) -> None:
        self.pyramid, self.index, self.spec, self.ledger = pyramid, index, spec, ledger

    def completed(self, slabs: list[Box]) -> set[Box]:
        return self.ledger.completed(slabs)

    def write(self, box: Box, data: np.ndarray, t: int | None) -> None:
        ti = time_index(self.spec, t)
        self.pyramid.put(self.index, box, conform(self.spec, box, data), ti)

    def slab_done(self, slab: Box) -> None:
        self.ledger.mark(slab)

    def slab_failed(self, slab: Box) -> None:
        """Nothing to undo: the ledger records only complete slabs."""

    def finish(self) -> list[Path]:
        """The level is complete (the pyramid publishes the whole output once every level is)."""
        self.ledger.require_all(z_slabs(self.spec.box), self.pyramid.path)
        return []

    def abort(self) -> None:
        """Nothing to undo: the .partial directory and the ledger are the resumable state."""


class Pyramid:
    """`path` (written as `path.partial`) holding one array per spec in `specs`, lowest level first.

    A format subclasses it: `kind`, `array_exists`, `create_array`, `open_array`, `put`, and
    `write_metadata` (called once the arrays are open, on every open: it must be idempotent).
    """

    kind = "pyramid"
    supports_partial_writes = True

    def __init__(self, path: Path, specs: list[OutputSpec], fingerprint_extra: dict) -> None:
        self.path, self.specs = path, list(specs)
        self.partial = partial_of(path)
        ledgers = [SlabLedger(self.ledger_path(i), {**fingerprint(s, self.kind), **fingerprint_extra, "level": i})
                   for i, s in enumerate(self.specs)]
        resumed = [ledger.load() and self.array_exists(i) for i, ledger in enumerate(ledgers)]
        if not any(resumed):
            remove(self.partial)
            make_dir(self.partial)
        self.levels: list[Level] = []
        for i, (spec, ledger, again) in enumerate(zip(self.specs, ledgers, resumed)):
            if again:
                log.info("continuing level %d of %s", i, path)
                self.open_array(i)
            else:
                ledger = SlabLedger(ledger.path, ledger.fingerprint)  # a ledger without its array says nothing
                self.create_array(i)
                ledger.save()
            self.levels.append(Level(self, i, spec, ledger))
        self.write_metadata()

    def ledger_path(self, index: int) -> Path:
        tail = ".progress.json" if index == 0 else f".progress.{index}.json"
        return self.path.with_name(self.path.name + tail)

    # --- what a format provides -----------------------------------------------------------------

    def array_exists(self, index: int) -> bool:
        raise NotImplementedError

    def create_array(self, index: int) -> None:
        raise NotImplementedError

    def open_array(self, index: int) -> None:
        raise NotImplementedError

    def put(self, index: int, box: Box, data: np.ndarray, ti: int | None) -> None:
        raise NotImplementedError

    def write_metadata(self) -> None:
        raise NotImplementedError

    def tensorstore(self, call: Callable[[], T]) -> T:
        """A format's tensorstore open or write; an I/O failure (tensorstore's ValueError) is one SinkError."""
        try:
            return call()
        except ValueError as exc:
            raise disk_error(self.partial, tensorstore_oserror(exc)) from exc

    # --- the whole output -----------------------------------------------------------------------

    def finish(self) -> list[Path]:
        for level in self.levels:
            level.finish()
        publish(self.partial, self.path)
        for level in self.levels:
            level.ledger.remove()
        return [self.path]

    def abort(self) -> None:
        """Nothing to undo: the .partial directory and the ledgers are the resumable state."""

    # --- a pyramid of one level is a Sink -------------------------------------------------------

    @property
    def spec(self) -> OutputSpec:
        return self.specs[0]

    def completed(self, slabs: list[Box]) -> set[Box]:
        return self.levels[0].completed(slabs)

    def write(self, box: Box, data: np.ndarray, t: int | None) -> None:
        self.levels[0].write(box, data, t)

    def slab_done(self, slab: Box) -> None:
        self.levels[0].slab_done(slab)

    def slab_failed(self, slab: Box) -> None:
        self.levels[0].slab_failed(slab)
