"""Choose a sink by name, and the rule that ties an output kind to a file name.

| kind       | class        | output                                                        |
|------------|--------------|---------------------------------------------------------------|
| `tif`      | TiffSlices   | one TIFF per z (and t), ndex 1.x names (the default)          |
| `stack`    | TiffStack    | one multipage TIFF `stack_filename` (OME if named .ome.tif)   |
| `ome-tiff` | TiffStack    | the same as an OME-TIFF with physical sizes (no uint64)       |
| `zarr`     | OmeZarr      | `<stack_filename or region>.ome.zarr`, NGFF 0.5 (zarr v3) or  |
|            |              | 0.4 (zarr v2, `extra["zarr_version"] = 2`)                    |
| `precomputed` | PrecomputedVolume | `<stack_filename or region>.precomputed`, neuroglancer |
| `numpy`    | NumpySink    | `sink.array` in memory, or a `.npy` file if stack_filename    |
|            |              | ends in .npy (memory-mapped, resumable)                       |

`zarr` and `precomputed` also hold several levels: `open_pyramid(kind, specs)` (the `PYRAMIDS`).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ndex.errors import FieldError, UsageError
from ndex.sinks.base import OutputSpec, Sink
from ndex.sinks.layout import UNSIGNED
from ndex.sinks.numpy_sink import NumpySink
from ndex.sinks.tiff_slices import TiffSlices
from ndex.sinks.tiff_stack import TiffStack

ZARR_EXTRA = "pip install 'ndex[zarr]'"


def _lazy(module: str, name: str, what: str) -> Any:
    """Class `name` of `module`, imported only when asked for: tensorstore is an optional extra of the client."""
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"writing {what} needs {exc.name}, which is not installed: {ZARR_EXTRA}") from None


def open_ome_zarr(spec: OutputSpec) -> Sink:
    return _lazy("ndex.sinks.ome_zarr", "OmeZarr", "OME-Zarr")(spec)  # type: ignore[no-any-return]


def open_precomputed(spec: OutputSpec) -> Sink:
    return _lazy("ndex.sinks.precomputed", "PrecomputedVolume", "precomputed")(spec)  # type: ignore[no-any-return]


for _opener in (open_ome_zarr, open_precomputed):
    _opener.supports_partial_writes = True  # type: ignore[attr-defined]  # as the classes, without importing them

# kinds that hold several levels: the class of the whole pyramid (module, name, what)
PYRAMIDS = {"zarr": ("ndex.sinks.ome_zarr", "ZarrPyramid", "OME-Zarr"),
            "precomputed": ("ndex.sinks.precomputed", "Precomputed", "precomputed")}

SINKS: dict[str, Callable[[OutputSpec], Sink]] = {
    "tif": TiffSlices,
    "stack": TiffStack,
    "ome-tiff": partial(TiffStack, ome=True),
    "zarr": open_ome_zarr,
    "numpy": NumpySink,
    "precomputed": open_precomputed,
}
# the kinds whose sink takes blocks as they arrive: a pull into them holds no slab buffer
PARTIAL_WRITES = frozenset(kind for kind, make in SINKS.items()
                           if getattr(make, "func", make).supports_partial_writes)  # type: ignore[union-attr]
# file name suffixes each kind writes (lower case); the first suffix that matches a name decides its kind
SUFFIXES = {"zarr": (".ome.zarr", ".zarr"), "numpy": (".npy",), "ome-tiff": (".ome.tif", ".ome.tiff"),
            "stack": (".tif", ".tiff"), "precomputed": (".precomputed",)}
ONE_FILE = ("stack", "ome-tiff")  # kinds that need a file name (numpy without one is an array in memory)


def kind_of_name(name: str) -> str:
    """The output kind a file name asks for; FieldError for a name of no known kind."""
    for kind, suffixes in SUFFIXES.items():
        if name.lower().endswith(suffixes):
            return kind
    known = ", ".join(s for suffixes in SUFFIXES.values() for s in suffixes)
    raise FieldError("stack_filename", f"{{field}} {name!r} has no known output suffix: use one of {known}")


def output_kind(output: str | None, stack_filename: str | None) -> str:
    """The kind of output `output` and `stack_filename` ask for together, or FieldError if they disagree.

    No kind: TIFF slices without a file name, else the file name's kind. A kind and a name must agree
    (an OME-TIFF may also be named .tif); the one-file kinds need a name.
    """
    if output is not None and output not in SINKS:
        raise FieldError("output", f"unknown {{field}} {output!r}: use one of {', '.join(SINKS)}")
    if not stack_filename:
        if output in ONE_FILE:
            raise FieldError("stack_filename", f"output {output} writes one file: give its name with {{field}}")
        return output or "tif"
    named = kind_of_name(stack_filename)
    if output is None or output == named or (output == "ome-tiff" and named == "stack"):
        return output or named
    if output == "tif":
        raise FieldError("stack_filename", f"output tif writes one file per slice: drop {{field}} "
                                           f"{stack_filename!r}, or use output {named} for one file")
    raise FieldError("stack_filename", f"output {output} does not write {stack_filename!r} (a {named} "
                                       f"name): name it {'/'.join(SUFFIXES[output])} or use output {named}")


def open_sink(kind: str, spec: OutputSpec) -> Sink:
    """The sink `kind` (see the table above) for `spec`; UsageError for an unknown kind or dtype."""
    if kind not in SINKS:
        raise UsageError(f"unknown output format {kind!r}: use one of {', '.join(SINKS)}")
    check_dtype(spec)
    return SINKS[kind](spec)


def check_dtype(spec: OutputSpec) -> None:
    if np.dtype(spec.dtype).name not in UNSIGNED:
        raise UsageError(f"cannot write {np.dtype(spec.dtype).name} voxels: use one of {', '.join(UNSIGNED)}")


def open_pyramid(kind: str, specs: list[OutputSpec]) -> Any:
    """The output of `kind` holding one level per spec (lowest first): `.levels[i]` are their Sinks,
    `.finish()` publishes the whole; FieldError for a kind that holds one level only."""
    if kind not in PYRAMIDS:
        raise FieldError("levels", f"output {kind} holds one resolution level: pull several {{field}} into "
                                   f"{' or '.join(PYRAMIDS)}, or one level")
    for spec in specs:
        check_dtype(spec)
    return _lazy(*PYRAMIDS[kind])(specs)
