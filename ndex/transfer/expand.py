"""expand_stack: split a multipage TIFF into one TIFF per slice, named so ndpush can read them back.

ndex 1.x shipped this as a script; here it is a library function (the `expand_stacks` command is a
thin wrapper). Pages are read one at a time, so the stack is never held in memory. It reads through
a source and writes like a sink, hence its place in transfer: each file is written under
`<name>.partial` and renamed by the sinks' own helpers, so a file that exists is complete and a
failed write leaves nothing behind.

    result = expand_stack("stack.tif", "out/", split_rgb=True)
    # out/r/0000.tif, out/g/0000.tif, out/b/0000.tif, ...   (templates: r/<p:4>, ...)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from ndex.errors import FieldError, SinkError, UsageError
from ndex.sinks._files import disk_errors, make_dir, partial_of, publish, remove
from ndex.sources.base import SourceSpec
from ndex.sources.stack import StackSource
from ndex.sources.templates import PLACEHOLDER, check_template, fill_template

RGB = ("r", "g", "b")


@dataclass(frozen=True)
class ExpandResult:
    """What was written: the `expand_stacks` command turns it into the ndpush line that reads it back."""

    outdir: Path
    base_filename: str  # template; with split_rgb it contains <ch>
    extension: str
    z_range: tuple[int, int]
    channels: tuple[str, ...]  # ("",) unless split_rgb
    files: int


def default_template(depth: int, split_rgb: bool) -> str:
    width = max(4, len(str(max(depth - 1, 0))))
    return f"<ch>/<p:{width}>" if split_rgb else f"<p:{width}>"


def expand_stack(input_path: str | os.PathLike[str], outdir: str | os.PathLike[str], *,
                 base_filename: str | None = None, split_rgb: bool = False) -> ExpandResult:
    """Write each page of `input_path` as `outdir/<base_filename>.tif` (one set per RGB channel if asked)."""
    outdir = Path(outdir)
    _check_outdir(outdir)
    source = StackSource(SourceSpec(datasource="stack", base_path=str(input_path), rgb_channel=0 if split_rgb else None))
    try:
        depth = source.depth
        template = base_filename or default_template(depth, split_rgb)
        _check_output_template(template, split_rgb, depth)
        channels = RGB if split_rgb else ("",)
        for z in range(depth):
            _write_page(source.plane(z), z, outdir, template, channels, f"{source.path} page {z}")
    finally:
        source.close()
    return ExpandResult(outdir, template, "tif", (0, depth), channels, depth * len(channels))


def _check_outdir(outdir: Path) -> None:
    """Refused before anything is written: ndpush would read `<...>` in the directory as a placeholder of
    its base_path, so the slices written there could not be pushed back."""
    found = PLACEHOLDER.search(str(outdir))
    if found:
        raise FieldError("outdir", f"{{field}} {str(outdir)!r} contains {found.group(0)!r}, which ndpush reads as a "
                                   "file name placeholder: choose a directory whose path has no '<...>'")


def _check_output_template(template: str, split_rgb: bool, depth: int) -> None:
    has_z = check_template(template, "base_filename")
    if not has_z and depth > 1:
        raise UsageError(f"base_filename {template!r} has no z placeholder (<p:N> or <>): every page would "
                         "overwrite the same file")
    if split_rgb and "<ch>" not in template:
        raise UsageError(f"--split_rgb writes one file set per channel: put <ch> in base_filename "
                         f"(e.g. <ch>/{template} or {template}_<ch>)")


def _write_page(plane: np.ndarray, z: int, outdir: Path, template: str, channels: tuple[str, ...],
                what: str) -> None:
    if channels != ("",):
        if plane.ndim != 3 or plane.shape[2] < 3:
            raise UsageError(f"--split_rgb needs RGB pages but {what} has shape {plane.shape}")
        images = [plane[:, :, i] for i in range(len(channels))]
    else:
        if plane.ndim != 2:
            raise UsageError(f"{what} has shape {plane.shape}, not grayscale: use --split_rgb for RGB stacks")
        images = [plane]
    for channel, image in zip(channels, images):
        _write_atomic(outdir / f"{fill_template(template, z, channel)}.tif", image)


def _write_atomic(path: Path, image: np.ndarray) -> None:
    partial = partial_of(path)
    make_dir(path.parent)
    try:
        with disk_errors(partial):
            _imwrite(partial, image)
        publish(partial, path)
    except BaseException:
        remove(partial)  # a half-written slice must not be left for the next run to trip over
        raise


def _imwrite(path: Path, image: np.ndarray) -> None:
    try:
        tifffile.imwrite(path, np.ascontiguousarray(image))
    except OSError:
        raise  # disk_errors names the fix
    except Exception as exc:  # tifffile refuses an image with ValueError, TypeError, struct.error...
        raise SinkError(f"cannot write {path}: {exc}") from exc
