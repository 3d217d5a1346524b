"""The block pipeline both engines share: bounded, adaptive concurrency and pooled block buffers.

Both the pull and the push engine move cuboid-aligned blocks on a thread pool with a cap on blocks in
flight (so memory stays flat), and both adapt that cap to the server: on a 429/503 fewer blocks are
in flight (halved per throttle, grown back by one after a run of successes) and every worker waits
out the server's Retry-After; a throttled block is retried, never failed for being throttled. Both
submit their blocks through one `Dispatcher`: what a block does (post or fetch) and where its data
comes from (the push's slab reader) or goes (the pull's sink) are the engines' own.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from ndex.errors import Throttled, ends_transfer

log = logging.getLogger(__name__)

MAX_THROTTLE_ROUNDS = 50  # a block throttled this often (after the client's own retries) is failed
T = TypeVar("T")

def acquire_unless_stopped(slots: threading.Semaphore, stop: threading.Event, poll: float = 0.2) -> bool:
    """Take one of `slots`, waiting as long as needed; False (holding nothing) once `stop` is set."""
    while not slots.acquire(timeout=poll):
        if stop.is_set():
            return False
    if stop.is_set():
        slots.release()
        return False
    return True


class InflightLimit:
    """Blocks in flight, adapted to the server (AIMD): halved when throttled, +1 after `limit` successes.

    `not_before` is a shared pause: after a 429/503 every worker waits until then before its next
    request, so the server's Retry-After is honoured by all threads, not only the one that got it.
    """

    def __init__(self, maximum: int, *, default_pause: float = 1.0, clock: Any = time.monotonic,
                 sleep: Any = time.sleep) -> None:
        self.maximum = self.limit = max(1, int(maximum))
        self.active = self.successes = self.throttles = 0
        self.not_before = 0.0
        self.default_pause, self.clock, self.sleep = default_pause, clock, sleep
        self._cond = threading.Condition()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a free slot; False if `stop` was set meanwhile."""
        with self._cond:
            while self.active >= self.limit:
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
            self.active += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def wait_turn(self) -> None:
        """Sleep out a pause the server asked for."""
        while (delay := self.not_before - self.clock()) > 0:
            self.sleep(min(delay, 1.0))

    def success(self) -> None:
        with self._cond:
            self.successes += 1
            if self.successes >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self.successes = 0
                self._cond.notify_all()

    def throttled(self, retry_after: float | None) -> None:
        with self._cond:
            self.throttles += 1
            self.successes = 0
            self.limit = max(1, self.limit // 2)
            pause = self.default_pause if retry_after is None else retry_after
            self.not_before = max(self.not_before, self.clock() + pause)
        log.info("server asks to slow down: %d block(s) in flight from now, pausing %.1f s", self.limit, pause)

    def retried(self, what: str, exc: BaseException) -> None:
        """A retry listener of the client: its own retries of a 429/503 shrink the window too."""
        if isinstance(exc, Throttled):
            self.throttled(exc.retry_after)


class BlockBuffers:
    """Reusable contiguous buffers for the blocks in flight.

    A worker copies its block out of the slab into one (blosc needs contiguous input), posts it and
    gives it back. Without the pool every block is a fresh block-sized array: page faults for each,
    and glibc keeps the freed ones in per-thread malloc arenas, so the process grew by about a block
    per thread beyond what was in use. At most `count` buffers exist (allocated on first use).
    """

    def __init__(self, count: int, nbytes: int) -> None:
        self.count, self.nbytes = max(1, int(count)), int(nbytes)
        self._free: list[np.ndarray] = []
        self._made = 0
        self._cond = threading.Condition()

    def copy(self, view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(buffer, contiguous copy of `view` inside it); hand the buffer back with `give_back`.

        Nothing here keeps `view` (nor so the slab it looks into) alive after the copy."""
        if view.nbytes > self.nbytes:
            raise ValueError(f"a {view.nbytes}-byte block does not fit the {self.nbytes}-byte buffers")
        buffer = self._take()
        out = buffer[:view.nbytes].view(view.dtype).reshape(view.shape)
        np.copyto(out, view)
        return buffer, out

    def give_back(self, buffer: np.ndarray) -> None:
        with self._cond:
            self._free.append(buffer)
            self._cond.notify()

    def _take(self) -> np.ndarray:
        with self._cond:
            while not self._free and self._made >= self.count:
                self._cond.wait()
            if self._free:
                return self._free.pop()
            self._made += 1
        return np.empty(self.nbytes, dtype=np.uint8)



def throttled_call(limit: InflightLimit, request: Callable[[], T]) -> T:
    """`request()` once the server's pause is over; throttling shrinks the window and retries, never fails."""
    for round_ in range(MAX_THROTTLE_ROUNDS):
        limit.wait_turn()
        try:
            result = request()
        except Throttled as exc:
            limit.throttled(exc.retry_after)
            if round_ == MAX_THROTTLE_ROUNDS - 1:
                raise
            continue
        limit.success()
        return result
    raise AssertionError("unreachable")  # the last round returns or raises


class Dispatcher:
    """Runs block jobs on a thread pool with at most `inflight` blocks in flight, fewer while the server
    throttles (`limit`); an error that ends the transfer (`ends_transfer`) stops the run: nothing more
    is submitted, and the jobs still queued see `stop` set.

    `ended(exc)` hears the first such error (a run report's `end`). Use inside `running()`.
    """

    def __init__(self, inflight: int, threads: int, name: str, ended: Callable[[BaseException], None]) -> None:
        self.limit = InflightLimit(inflight)
        self.threads, self.name, self.ended = threads, name, ended
        self.stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        """The pool, drained on the way out; Ctrl-C (or any error) while submitting sets `stop` first,
        so the jobs still queued do not start."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix=self.name) as pool:
            self._pool = pool
            try:
                yield
            except BaseException:
                self.stop.set()
                raise
            finally:
                self._pool = None

    def submit_all(self, items: Iterable[T], job: Callable[[T], None],
                   on_error: Callable[[T, Exception], None]) -> int:
        """Submit `job(item)` for each item in order, waiting for a slot each; how many were submitted
        (fewer than all once the run stops). A job's exception goes to `on_error(item, exc)`."""
        sent = 0
        for item in items:
            if not self.limit.acquire(self.stop):
                break
            assert self._pool is not None, "submit_all() runs inside running()"
            self._pool.submit(self._call, item, job, on_error)
            sent += 1
        return sent

    def fatal(self, exc: BaseException) -> bool:
        """Whether `exc` ends the transfer; if so the run stops now (a re-run resumes)."""
        if not ends_transfer(exc):
            return False
        self.ended(exc)
        self.stop.set()
        return True

    def _call(self, item: T, job: Callable[[T], None], on_error: Callable[[T, Exception], None]) -> None:
        try:
            job(item)
        except Exception as exc:  # every failure is reported for its block, none is swallowed
            self.fatal(exc)
            on_error(item, exc)
        finally:
            self.limit.release()
