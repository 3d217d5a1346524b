"""Chunked TIFF layouts and a TIFF file written one chunk at a time, so a slice never sits whole in memory.

A slice of a pull is written band by band (a z-slab cut along y, and for very wide regions also along
x) as the blocks of each band arrive. tifffile writes a page from one array or one iterator it pulls
from; neither lets a file be continued across bands arriving in another thread, nor across runs. So
the slices are written here: the header first, every strip or tile appended as its band arrives (in
any order: the offset tables say where each one is), and the one IFD last, when the slice is
complete. The chunk tables can be saved, so an interrupted pull continues the same `.partial` file.

Layouts (`ChunkLayout.choose`): 512-row strips, or 512 x 512 tiles for regions wider than
`TILED_WIDTH`. Chunks follow the server's cuboid grid, so a band made of whole cuboids is made of whole
chunks: where the region does not start on the grid, the strips (tiles) get the largest height (side)
that divides the distance to the grid. The pixels are plain, single-sample, minisblack, unsigned
little-endian: what tifffile, Pillow (libtiff), Fiji and napari all open.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ndex.geometry import BOSS_CUBOID, Box, ceil_div
from ndex.sinks._files import disk_errors

TILED_WIDTH = 32768  # wider than this, slices are tiled: a 512-row strip would be 16+ MB per page
CHUNK = BOSS_CUBOID[0]  # strip rows and tile side on an aligned region: one cuboid
MIN_TILE = 16  # TIFF requires tile sides in multiples of 16
COMPRESSION_TAGS = {"none": 1, "lzw": 5, "zlib": 8, "zstd": 50000}
CLASSIC_LIMIT = 2**32 - 2**20  # offsets past this need BigTIFF (the IFD and tables are written last)


@dataclass(frozen=True)
class ChunkLayout:
    """How a (height x width) slice of the region `box` is cut into strips or tiles."""

    width: int
    height: int
    rows: int  # rows per strip, or tile height
    cols: int  # tile width; 0 for strips

    @classmethod
    def choose(cls, box: Box) -> ChunkLayout:
        """Strips (tiles beyond TILED_WIDTH) whose edges fall on the cuboid grid of `box`'s coordinates."""
        (sx, sy, _), (x0, y0, _) = box.shape, box.start
        rows = math.gcd(CHUNK, -y0 % CHUNK)
        side = math.gcd(rows, -x0 % CHUNK)
        if sx > TILED_WIDTH and side >= MIN_TILE:
            return cls(sx, sy, side, side)
        return cls(sx, sy, rows, 0)

    @property
    def tiled(self) -> bool:
        return self.cols > 0

    @property
    def grid(self) -> tuple[int, int]:
        """(chunk rows, chunk columns) of a slice."""
        return ceil_div(self.height, self.rows), ceil_div(self.width, self.cols) if self.tiled else 1

    @property
    def count(self) -> int:
        rows, cols = self.grid
        return rows * cols

    def chunks(self, y: tuple[int, int], x: tuple[int, int]) -> list[tuple[int, int, int, int, int]]:
        """(index, y0, y1, x0, x1) of the chunks in rows y, columns x of the slice (both on chunk edges)."""
        cols = self.cols or self.width
        out = []
        for r in range(y[0] // self.rows, ceil_div(y[1], self.rows)):
            for c in range(x[0] // cols, ceil_div(x[1], cols)):
                y0, x0 = r * self.rows, c * cols
                out.append((r * self.grid[1] + c, y0, min(y0 + self.rows, self.height), x0,
                            min(x0 + cols, self.width)))
        return out


def encoder(compression: str, level: int | None):  # type: ignore[no-untyped-def]  # a codec function
    """bytes -> bytes for `compression` (checked by tiff_options.tiff_compression beforehand)."""
    if compression == "none":
        return lambda array: array.reshape(-1).view(np.uint8)  # written as is: no copy
    import imagecodecs

    encode = getattr(imagecodecs, f"{compression}_encode")
    return encode if level is None else (lambda data: encode(data, level=level))


def needs_bigtiff(layout: ChunkLayout, itemsize: int) -> bool:
    """Whether a slice could outgrow 32-bit offsets (compression may grow incompressible data a little)."""
    return layout.width * layout.height * itemsize * 1.01 + layout.count * 16 + 2**16 > CLASSIC_LIMIT


class ChunkedTiff:
    """One single-page TIFF written chunk by chunk into `path`; `close_page()` writes its IFD.

    `offsets`/`counts` (one per chunk, 0 while missing) and `end` are the state a resumed run needs:
    `ChunkedTiff(path, ..., state=saved)` truncates the file to `end` and continues.
    """

    def __init__(self, path: Path, layout: ChunkLayout, dtype: np.dtype, compression: str,
                 level: int | None, *, bigtiff: bool, extratags: tuple[tuple[int, int, int, bytes], ...] = (),
                 state: dict | None = None) -> None:
        self.path, self.layout, self.dtype = path, layout, np.dtype(dtype)
        self.compression, self.bigtiff, self.extratags = compression, bigtiff, extratags
        self._encode = encoder(compression, level)
        with disk_errors(path):
            if state is None:
                self._file = open(path, "w+b")
                self._file.write(self._header(0))
                self.offsets, self.counts = [0] * layout.count, [0] * layout.count
            else:
                self._file = open(path, "r+b")
                self._file.truncate(state["end"])
                self.offsets, self.counts = list(state["offsets"]), list(state["counts"])
            self.end = self._file.seek(0, os.SEEK_END)

    def state(self) -> dict:
        return {"end": self.end, "offsets": self.offsets, "counts": self.counts}

    @property
    def complete(self) -> bool:
        return all(self.counts)

    def write(self, rows: tuple[int, int], cols: tuple[int, int], data: np.ndarray) -> None:
        """Store the chunks covering `data`, the slice's pixels at rows x cols (both on chunk edges)."""
        with disk_errors(self.path):
            for index, y0, y1, x0, x1 in self.layout.chunks(rows, cols):
                part = data[y0 - rows[0]:y1 - rows[0], x0 - cols[0]:x1 - cols[0]]
                if self.layout.tiled and part.shape != (self.layout.rows, self.layout.cols):
                    padded = np.zeros((self.layout.rows, self.layout.cols), self.dtype)  # edge tiles are full size
                    padded[:part.shape[0], :part.shape[1]] = part
                    part = padded
                body = self._encode(np.ascontiguousarray(part, self.dtype.newbyteorder("<")))
                self._file.seek(self.end)
                self._file.write(body)
                self.offsets[index], self.counts[index] = self.end, len(body)
                self.end += len(body)

    def flush(self) -> None:
        with disk_errors(self.path):
            self._file.flush()

    def close_page(self) -> None:
        """Append the IFD (every chunk must be written) and point the header at it."""
        if not self.complete:
            raise ValueError(f"{self.path}: {self.counts.count(0)} chunks were never written")
        with disk_errors(self.path):
            self._file.seek(self.end + (self.end & 1))  # IFDs start on a word boundary
            ifd = self._file.tell()
            self._file.write(self._ifd(ifd))
            self._file.seek(0)
            self._file.write(self._header(ifd))
            self._file.close()

    def close(self) -> None:
        """Close without an IFD (the file stays a resumable `.partial`)."""
        self._file.close()

    # --- the TIFF structure ------------------------------------------------------------------------

    def _header(self, ifd: int) -> bytes:
        if self.bigtiff:
            return b"II" + struct.pack("<HHHQ", 43, 8, 0, ifd)
        return b"II" + struct.pack("<HI", 42, ifd)

    def _ifd(self, at: int) -> bytes:
        """The IFD starting at file offset `at`, followed by the values that do not fit in its entries."""
        lay, short, long_ = self.layout, 3, 4
        offset_type = 16 if self.bigtiff else long_
        tags: list[tuple[int, int, list[int] | bytes]] = [
            (254, long_, [0]), (256, long_, [lay.width]), (257, long_, [lay.height]),
            (258, short, [self.dtype.itemsize * 8]), (259, short, [COMPRESSION_TAGS[self.compression]]),
            (262, short, [1]), (277, short, [1]), (284, short, [1]), (339, short, [1]),
        ]
        if lay.tiled:
            tags += [(322, long_, [lay.cols]), (323, long_, [lay.rows]),
                     (324, offset_type, self.offsets), (325, offset_type, self.counts)]
        else:
            tags += [(273, offset_type, self.offsets), (278, long_, [lay.rows]), (279, offset_type, self.counts)]
        tags += [(code, kind, value) for code, kind, _, value in self.extratags]
        return self._pack(sorted(tags, key=lambda t: t[0]), at)

    def _pack(self, tags: list[tuple[int, int, list[int] | bytes]], at: int) -> bytes:
        big = self.bigtiff
        count_fmt, entry_size, inline, next_fmt = ("<Q", 20, 8, "<Q") if big else ("<H", 12, 4, "<I")
        sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 16: 8}
        codes = {1: "B", 2: "B", 3: "H", 4: "I", 16: "Q"}
        head = struct.pack(count_fmt, len(tags))
        extra_at = at + len(head) + entry_size * len(tags) + struct.calcsize(next_fmt)
        entries, extra = b"", b""
        for code, kind, value in tags:
            raw = value if isinstance(value, bytes) else struct.pack(f"<{len(value)}{codes[kind]}", *value)
            count = len(raw) // sizes[kind]
            if len(raw) <= inline:
                field = raw.ljust(inline, b"\0")
            else:
                field = struct.pack("<Q" if big else "<I", extra_at + len(extra))
                extra += raw + (b"\0" if len(raw) & 1 else b"")
            entries += struct.pack("<HHQ" if big else "<HHI", code, kind, count) + field
        return head + entries + struct.pack(next_fmt, 0) + extra


def ascii_tag(code: int, text: str) -> tuple[int, int, int, bytes]:
    """An ASCII tag for `extratags` (NUL-terminated, as TIFF wants)."""
    raw = text.encode("ascii", "replace") + b"\0"
    return code, 2, len(raw), raw


RESOLUTION_UNITS = {"NONE": 1, "INCH": 2, "CENTIMETER": 3}


def tags_of(args: dict) -> tuple[tuple[int, int, int, bytes], ...]:
    """`extratags` for the tifffile write() arguments the metadata module gives (description, resolution,
    resolutionunit): the same tags, for files this module writes."""
    out = []
    if args.get("description"):
        out.append(ascii_tag(270, args["description"]))
    if args.get("resolution"):
        for code, value in zip((282, 283), args["resolution"]):
            ratio = Fraction(float(value)).limit_denominator(10**6)
            out.append((code, 5, 1, struct.pack("<II", ratio.numerator, ratio.denominator)))
    if args.get("resolutionunit"):
        out.append((296, 3, 1, struct.pack("<H", RESOLUTION_UNITS[str(args["resolutionunit"]).upper()])))
    return tuple(out)
