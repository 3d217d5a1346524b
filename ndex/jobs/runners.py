"""Run the jobs of a plan: one in this process (`ndex run`), or many as subprocesses on a bounded local
pool or on an existing Dask cluster.

Every job runs as its own `ndex run job.json` process, wherever it runs: jobs share nothing but the
server and the plan directory, and the job process writes its own state file. A runner only starts
jobs that are not done, at most `workers` at a time, retries failed ones up to `retries` times, and
reports each as it finishes. The resource-creating step of a push runs once, here, before any data
job is started; a data job refuses to start while that step is not done.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ndex.errors import UsageError
from ndex.jobs.spec import (
    CREATE,
    DONE,
    PENDING,
    RUNNING,
    JobSpec,
    JobState,
    plan_of,
    read_job,
    read_state,
    write_state,
)

log = logging.getLogger(__name__)
NOT_RETRIED = {2}  # the exit code of bad input (a usage error, a bad slice): the same job fails the same way

TAIL_LINES = 5


@dataclass(frozen=True)
class Outcome:
    """How one attempt at a job ended."""

    path: Path
    state: JobState
    attempt: int = 1
    output_tail: str = ""  # last lines of the job's console output, for a failure report

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".json")

    @property
    def ok(self) -> bool:
        return self.state.state == DONE

    @property
    def nbytes(self) -> int:
        """The voxel data the job moved: its spec's bytes once it is done."""
        return read_job(self.path).nbytes if self.ok else 0


def check_created(job_path: Path, kind: str) -> None:
    """A data job of a plan with a create step starts only after that step is done."""
    files = plan_of(job_path)
    if kind == CREATE or files is None or files.create is None:
        return
    if read_state(files.create).state != DONE:
        raise UsageError(f"the resources of this plan are not created yet: run `ndex run {files.create}` "
                         f"first (it runs once, before the data jobs)")


def run_job(job_path: Path, execute: Callable[[JobSpec], int], *, force: bool = False) -> tuple[JobState, bool]:
    """Run one job in this process through `execute(job) -> exit code`; (final state, whether it ran).

    A done job is not run again unless `force`. The state goes running -> done | failed, and a job
    interrupted by an exception (Ctrl-C included) is left failed, never running.
    """
    job_path = Path(job_path)
    job = read_job(job_path)
    state = read_state(job_path)
    if state.state == DONE and not force:
        return state, False
    check_created(job_path, job.kind)
    state = state.begin()
    write_state(job_path, state)
    said = LastError()
    logging.getLogger("ndex.cli").addHandler(said)
    try:
        code = execute(job)
    except BaseException as exc:
        write_state(job_path, state.end(1, f"interrupted: {type(exc).__name__} {exc}".strip()))
        raise
    finally:
        logging.getLogger("ndex.cli").removeHandler(said)
    state = state.end(code, "" if code == 0 else said.line or f"{job.kind} exited with code {code}")
    write_state(job_path, state)
    return state, True


class LastError(logging.Handler):
    """The last error or warning a command logged: the failed job's message in `ndex status`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.line = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.line = record.getMessage()


def ndex_run_command(job_path: Path) -> list[str]:
    """The command that runs one job in a fresh interpreter of this installation."""
    return [sys.executable, "-m", "ndex.cli.main", "run", str(job_path)]


def console_path(job_path: Path) -> Path:
    return Path(job_path).with_name(Path(job_path).name.removesuffix(".json") + ".out")


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_subprocess(job_path: str, attempt: int = 1) -> Outcome:
    """Run `ndex run job_path` as a child process (console output appended beside the job file).

    Also the function a Dask worker executes, so it takes and returns only picklable values.
    """
    path = Path(job_path)
    console = console_path(path)
    with open(console, "ab") as out:
        code = subprocess.run(ndex_run_command(path), stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
    output = tail(console)
    last = output.splitlines()[-1] if output else ""
    state = record_end(path, code, last or f"ndex run exited with code {code}")
    return Outcome(path, state, attempt, "" if state.state == DONE else output)


def record_end(job_path: Path, exit_code: int, message: str) -> JobState:
    """The job's state after an attempt, recording it failed if the job could not record its own end.

    A job still pending or running never got that far (killed, refused to start, its worker died);
    a done or failed job wrote its own end, which stands: a worker failing after `ndex run` wrote
    done does not undo the data the job moved.
    """
    state = read_state(job_path)
    if state.state in (PENDING, RUNNING):
        state = state.end(exit_code or 1, message)
        write_state(job_path, state)
    return state


class Pool(Protocol):
    """Where job attempts run: submit one, and wait until at least one has finished.

    A submission is a future whose `result()` is the attempt's `Outcome` (or raises if the worker failed).
    """

    def submit(self, job_path: Path, attempt: int) -> Any: ...

    def wait_first(self, futures: list[Any]) -> Iterable[Any]: ...


class LocalPool:
    """Jobs as child processes of this machine, at most `workers` at once."""

    def __init__(self, workers: int) -> None:
        self.executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="ndex-plan")

    def submit(self, job_path: Path, attempt: int) -> Future:
        return self.executor.submit(run_subprocess, str(job_path), attempt)

    def wait_first(self, futures: list[Future]) -> Iterable[Future]:
        return wait(futures, return_when=FIRST_COMPLETED).done

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def failed_outcome(job_path: Path, attempt: int, exc: BaseException) -> Outcome:
    """An attempt whose worker failed (not necessarily the job: it may have recorded its end first)."""
    state = record_end(job_path, 1, f"{type(exc).__name__}: {exc}")
    return Outcome(job_path, state, attempt, "" if state.state == DONE else str(exc))


def drive(pool: Pool, jobs: list[Path], *, workers: int, retries: int = 0,
          on_finish: Callable[[Outcome, bool], None] | None = None) -> list[Outcome]:
    """Run `jobs` on `pool`, at most `workers` in flight; the final outcome of each, in job order.

    `on_finish(outcome, will_retry)` is called as each attempt ends.
    """
    queue = [(path, 1) for path in jobs]
    queue.reverse()
    running: dict[Any, tuple[Path, int]] = {}
    final: dict[Path, Outcome] = {}
    while queue or running:
        while queue and len(running) < max(1, workers):
            path, attempt = queue.pop()
            running[pool.submit(path, attempt)] = (path, attempt)
        for future in pool.wait_first(list(running)):
            path, attempt = running.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # the worker failed, not the job: still a failed attempt, reported
                outcome = failed_outcome(path, attempt, exc)
            retry = not outcome.ok and attempt <= retries and outcome.state.exit_code not in NOT_RETRIED
            if on_finish:
                on_finish(outcome, retry)
            if retry:
                queue.append((path, attempt + 1))
            else:
                final[path] = outcome
    return [final[p] for p in jobs]


def unfinished(paths: Iterable[Path]) -> list[Path]:
    """The jobs a re-run must still run: everything not done (failed, pending, or left running)."""
    return [p for p in paths if read_state(p).state != DONE]
