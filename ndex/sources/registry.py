"""Sources chosen by datasource name from a lazy registry (fsspec-style).

A backend's module is imported only when it is opened, so a missing optional dependency (boto3
for s3) matters only to those who use it, and then with an install hint.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from ndex.errors import UsageError
from ndex.sources.base import Source, SourceSpec

# datasource -> ("module:function", what to install if the module's imports fail)
REGISTRY: dict[str, tuple[str, str]] = {
    "local": ("ndex.sources.local:open_local", ""),
    "stack": ("ndex.sources.stack:open_stack", ""),
    "tiles": ("ndex.sources.tiles:open_tiles", ""),
    "s3": ("ndex.sources.s3:open_s3", "pip install 'ndex[s3]'"),
    "render": ("ndex.sources.render:open_render", ""),
    "zarr": ("ndex.sources.volume:open_zarr", "pip install 'ndex[zarr]'"),
    "n5": ("ndex.sources.volume:open_n5", "pip install 'ndex[zarr]'"),
    "precomputed": ("ndex.sources.volume:open_precomputed", "pip install 'ndex[zarr]'"),
}


def register(datasource: str, target: str, install_hint: str = "") -> None:
    """Add or replace a backend: `target` is "package.module:function(spec) -> Source"."""
    if ":" not in target:
        raise UsageError(f"source backend {target!r} must be given as 'module:function'")
    REGISTRY[datasource] = (target, install_hint)


def opener(datasource: str) -> Callable[[SourceSpec], Source]:
    """The function that opens `datasource`, importing its module now."""
    try:
        target, hint = REGISTRY[datasource]
    except KeyError:
        raise UsageError(f"unknown datasource {datasource!r}: use one of {', '.join(sorted(REGISTRY))}") from None
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        fix = hint or f"install {exc.name}"
        raise UsageError(f"the {datasource} datasource needs {exc.name}, which is not installed: {fix}") from exc
    return getattr(module, function)


def open_source(spec: SourceSpec) -> Source:
    """Open the source that `spec` describes; the caller closes it (or uses `with closing(...)`)."""
    return opener(spec.datasource)(spec)
