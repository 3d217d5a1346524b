"""Bounded concurrency shared by the pull and push engines."""
from __future__ import annotations

import threading


def acquire_unless_stopped(slots: threading.Semaphore, stop: threading.Event, poll: float = 0.2) -> bool:
    """Take one of `slots`, waiting as long as needed; False (holding nothing) once `stop` is set."""
    while not slots.acquire(timeout=poll):
        if stop.is_set():
            return False
    if stop.is_set():
        slots.release()
        return False
    return True
