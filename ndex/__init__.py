"""ndex: move large 3D/4D image volumes in and out of BOSS-style spatial databases.

The public API is what `__all__` lists; everything else is private and may change.
Heavy submodules are imported on first use so that `import ndex` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "2.0.0.dev0"

_LAZY = {
    "Box": "ndex.geometry",
    "Remote": "ndex.config",
    "discover": "ndex.config",
    "NdexError": "ndex.errors",
    "BossClient": "ndex.client",
    "ChannelRef": "ndex.client",
    "PullSpec": "ndex.transfer.download",
    "pull": "ndex.transfer.download",
    "pull_array": "ndex.transfer.download",
    "PushSpec": "ndex.transfer.upload",
    "TransferOptions": "ndex.transfer.options",
    "push": "ndex.transfer.upload",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ndex' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
