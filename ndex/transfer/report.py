"""The run report every transfer returns: what moved, how fast, what failed."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndex.progress import Progress, mb


@dataclass
class RunReport:
    """Filled in by the transfer while it runs (thread-safe `add`), read by the CLI at the end."""

    action: str  # "pull" | "push" | "verify"
    blocks_total: int = 0
    blocks_done: int = 0
    blocks_skipped: int = 0  # already done by an earlier run, or all-zero and not posted
    nbytes: int = 0  # uncompressed voxel bytes moved by this run
    seconds: float = 0.0
    retries: int = 0
    requests: int = 0
    throttled: int = 0  # 429/503 answers that shrank the blocks in flight
    failures: dict[Any, str] = field(default_factory=dict)  # block (Box) -> one-line error
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ended_by: BaseException | None = None  # the error that ended the whole run early, if one did
    _t0: float = field(default_factory=time.monotonic, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def block_done(self, nbytes: int) -> None:
        with self._lock:
            self.blocks_done += 1
            self.nbytes += nbytes

    def block_failed(self, block: Any, error: BaseException) -> None:
        with self._lock:
            self.failures[block] = " ".join(str(error).split()) or type(error).__name__

    def end(self, error: BaseException) -> None:
        """Record the error that ended the run (the first one; later blocks only echo it)."""
        with self._lock:
            self.ended_by = self.ended_by or error

    def stop_clock(self) -> None:
        self.seconds = time.monotonic() - self._t0

    @contextmanager
    def measure(self, client: Any, progress: Progress) -> Iterator[None]:
        """The transfer's run: at its end, even a failed one, the client's requests and retries of the run
        are counted in, the progress is closed and the clock stopped."""
        before = client.stats
        try:
            yield
        finally:
            progress.close()
            after = client.stats
            self.requests = after.requests - before.requests
            self.retries = after.retries - before.retries
            self.stop_clock()

    @property
    def unsent(self) -> int:
        """Blocks neither done, skipped nor failed: the run stopped before it came to them."""
        return self.blocks_total - self.blocks_done - self.blocks_skipped - len(self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def throughput(self) -> float:
        """Bytes per second of this run."""
        return self.nbytes / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: bytes, seconds, throughput, retries, failures."""
        return (f"{self.action}: {self.blocks_done} blocks ({self.blocks_skipped} skipped) of {self.blocks_total}, "
                f"{mb(self.nbytes)} in {self.seconds:.1f} s = {mb(self.throughput)}/s, "
                f"{self.requests} requests, {self.retries} retries, {len(self.failures)} failed")

    def failure_lines(self, limit: int = 20) -> list[str]:
        items = sorted(self.failures.items(), key=lambda kv: str(kv[0]))
        lines = [f"failed block {block}: {error}" for block, error in items[:limit]]
        if len(items) > limit:
            lines.append(f"... and {len(items) - limit} more failed blocks")
        return lines
