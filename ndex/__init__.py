"""ndex: move large 3D/4D image volumes in and out of BOSS-style spatial databases.

The public API is what `__all__` lists; everything else is private and may change.
Heavy submodules are imported on first use so that `import ndex` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "2.0.0.dev0"

_LAZY = {  # public name -> the module that defines it
    "Box": "ndex.geometry",
    "Remote": "ndex.config",
    "discover": "ndex.config",
    "BossClient": "ndex.client",
    "ChannelRef": "ndex.client",
    "SourceSpec": "ndex.sources",
    "open_source": "ndex.sources",
    "PullSpec": "ndex.transfer.download",
    "pull": "ndex.transfer.download",
    "pull_array": "ndex.transfer.download",
    "PushSpec": "ndex.transfer.upload",
    "TransferOptions": "ndex.transfer.options",
    "push": "ndex.transfer.upload",
    # the errors a caller catches (the whole tree is drawn in ndex.errors)
    "NdexError": "ndex.errors",
    "UsageError": "ndex.errors",
    "ConfigError": "ndex.errors",
    "RemoteError": "ndex.errors",
    "AuthError": "ndex.errors",
    "ResourceNotFound": "ndex.errors",
    "QuotaExceeded": "ndex.errors",
    "TransportError": "ndex.errors",
    "SourceError": "ndex.errors",
    "BadInput": "ndex.errors",
    "SinkError": "ndex.errors",
    "TransferFailed": "ndex.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ndex' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public API (`__all__`), though most of it is imported only on first use."""
    return sorted(__all__)
