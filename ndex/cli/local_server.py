"""Start a throw-away `ndex serve` on a free loopback port (for `ndex demo` and the benchmarks)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ndex.config import Remote
from ndex.errors import NdexError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ndex_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ndex.cli.main", *args]


class LocalServer:
    """`ndex serve --data DIR` on 127.0.0.1:<free port> with an admin token; a context manager."""

    def __init__(self, data_dir: Path, *, user: str = "demo", log_path: Path | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.user = user
        self.port = free_port()
        self.log_path = log_path or self.data_dir.parent / "serve.log"
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.token = ""

    @property
    def remote(self) -> Remote:
        return Remote("http", f"127.0.0.1:{self.port}", self.token, origin="ndex demo server")

    def start(self, timeout: float = 60.0) -> LocalServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        created = subprocess.run(ndex_command("token", "create", "--data", str(self.data_dir), "--user", self.user,
                                              "--role", "admin"), capture_output=True, text=True)
        if created.returncode != 0 or not created.stdout.strip():
            raise NdexError(f"could not create a token: {created.stderr.strip() or created.stdout.strip()}")
        self.token = created.stdout.strip().splitlines()[-1]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            ndex_command("serve", "--data", str(self.data_dir), "--host", "127.0.0.1", "--port", str(self.port),
                         *self.extra_args), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/ping/"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise NdexError(f"ndex serve exited with code {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise NdexError(f"ndex serve did not answer on port {self.port} within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
