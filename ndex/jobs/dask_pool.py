"""Jobs on an existing Dask distributed cluster (`--run dask://host:port`).

Each job runs on a worker as its own `ndex run job.json` process, so the plan directory must be on a
file system the workers share (as it must be for SLURM). `distributed` is imported only here, only
when a Dask run is asked for.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ndex.errors import RemoteUnreachable, UsageError
from ndex.jobs.runners import run_subprocess

DEFAULT_CONNECT_TIMEOUT = 10.0


def scheduler_address(url: str) -> str:
    """'dask://host:8786' -> 'tcp://host:8786' (tcp://, tls:// and inproc:// pass through)."""
    parts = urlsplit(url)
    if parts.scheme in ("tcp", "tls", "inproc", "ws", "wss"):
        return url
    if parts.scheme != "dask" or not parts.hostname or parts.port is None:
        raise UsageError(f"--run {url!r} is not a scheduler address: use dask://HOST:PORT (e.g. dask://head:8786)")
    return f"tcp://{parts.hostname}:{parts.port}"


def connect(url: str, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Any:
    """A `distributed.Client` of the scheduler at `url`; one clear error if it cannot be reached."""
    address = scheduler_address(url)
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--run dask:// needs the `distributed` package: pip install 'ndex[dask]'") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise RemoteUnreachable(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({exc}); "
                                f"start it (`dask scheduler`) or fix the address; no job was started") from None


class DaskPool:
    """Job attempts as Dask tasks; each attempt is a distinct task, never a cached result."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, job_path: Path, attempt: int) -> Any:
        # unique per submission: a re-run in the same cluster must not get an old attempt's result back
        key = f"ndex-{Path(job_path).stem}-attempt{attempt}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(run_subprocess, str(job_path), attempt, key=key, pure=False)

    def wait_first(self, futures: list[Any]) -> Iterable[Any]:
        from distributed import wait

        with self.client.as_current():  # wait() looks for a current client; ours is not the global default
            return wait(futures, return_when="FIRST_COMPLETED").done

    def close(self) -> None:
        self.client.close()
