"""Progress as an injected callback: the library reports, the CLI draws (tqdm lives in ndex.cli only)."""
from __future__ import annotations

from typing import Protocol


def mb(nbytes: float) -> str:
    """Bytes as every ndex message writes them: decimal megabytes, '1,234.5 MB'."""
    return f"{nbytes / 1e6:,.1f} MB"


class Progress(Protocol):
    """What a long-running operation reports. Every method must be cheap and thread-safe."""

    def start(self, total_blocks: int, total_bytes: int, *, done_blocks: int = 0, done_bytes: int = 0) -> None:
        """Called once with the totals (and what a resumed run already has)."""

    def advance(self, blocks: int = 1, nbytes: int = 0) -> None:
        """`blocks` more finished, carrying `nbytes` of uncompressed voxel data."""

    def retry(self, what: str, error: BaseException) -> None:
        """A request is being retried after `error`."""

    def note(self, message: str) -> None:
        """A one-line status message (e.g. 'waiting for downsample: level 2 of 4')."""

    def close(self) -> None:
        """The operation has ended (successfully or not)."""


class NullProgress:
    """Reports nowhere: the default for library use."""

    def start(self, total_blocks: int, total_bytes: int, *, done_blocks: int = 0, done_bytes: int = 0) -> None:
        pass

    def advance(self, blocks: int = 1, nbytes: int = 0) -> None:
        pass

    def retry(self, what: str, error: BaseException) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass
