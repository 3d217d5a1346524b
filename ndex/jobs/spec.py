"""Job specs and job states on disk: what a plan directory holds and how a job moves through it.

    PLAN_DIR/plan.json                    the plan: command, totals, the job files in order
    PLAN_DIR/jobs/create.json             the resource-creating step of a push (runs once, first)
    PLAN_DIR/jobs/job_<i>.json            one job: {"kind", "spec", "options"} and the planner's estimates
    PLAN_DIR/jobs/job_<i>.state.json      pending | running | done | failed, bytes, timestamps
    PLAN_DIR/logs/job_<i>/                the job's own log and manifest (push) / console output

A job's spec and options are the whole contract: `ndex run job.json` hands them to the engine
(`push()` / `pull()`; a create step's to `resources.create`), and the shell output is rendered
from them. No token is ever written: the job finds it in the environment or a config file when it
runs, like any other ndex command. States are written atomically (a temporary file renamed over the old one), so a reader never
sees half a state, even on a shared file system.
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ndex.errors import UsageError

FORMAT_VERSION = 2  # 1: jobs held an `ndex` argv
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATES = (PENDING, RUNNING, DONE, FAILED)
CREATE = "create"


@dataclass(frozen=True)
class JobSpec:
    """One job of a plan: what it moves (`spec`), how (`options`), and what the planner expects it to cost."""

    index: int  # -1 for the resource-creating step
    kind: str  # "push" | "pull" | "create"
    spec: Mapping[str, Any]  # PushSpec / PullSpec / CreateSpec as a dict
    options: Mapping[str, Any] = field(default_factory=dict)  # TransferOptions as a dict (empty for create)
    z: tuple[int, int] | None = None
    nbytes: int = 0
    requests: int = 0
    memory: int = 0  # data the engine holds: slabs and blocks in flight
    seconds: float | None = None
    cwd: str | None = None  # where the plan was made: relative paths in the spec are relative to it
    url: str | None = None  # the server (never a token: that comes from the environment or a config file)
    config_file: str | None = None  # the config file the plan was made with, if one was named
    log_dir: str | None = None  # the job's log (and a push's resume manifest)
    notify: Mapping[str, Any] | None = None  # Slack: token_file, user, channel (a webhook URL only from the environment)
    version: int = FORMAT_VERSION
    process_memory: int | None = None  # the engine's estimate of the whole process (push); None: it has none

    @property
    def name(self) -> str:
        return CREATE if self.kind == CREATE else f"job_{self.index}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, origin: str = "job spec") -> JobSpec:
        try:
            data = json.loads(text)
            if data.get("version") != FORMAT_VERSION:
                raise UsageError(f"{origin} has format version {data.get('version')!r}; this ndex reads "
                                 f"version {FORMAT_VERSION}: re-create the plan with `ndex plan`")
            data["z"] = None if data.get("z") is None else tuple(int(v) for v in data["z"])
            return cls(**data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{origin} is not a job spec written by `ndex plan` ({exc})") from None


@dataclass(frozen=True)
class JobState:
    """Where a job stands (a done job has moved its spec's `nbytes`)."""

    state: str = PENDING
    attempts: int = 0
    started: float | None = None  # UNIX seconds
    finished: float | None = None
    exit_code: int | None = None
    host: str = ""
    pid: int | None = None
    message: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> JobState:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        state = cls(**known)
        return state if state.state in STATES else replace(state, state=PENDING)

    def begin(self) -> JobState:
        return replace(self, state=RUNNING, attempts=self.attempts + 1, started=time.time(), finished=None,
                       exit_code=None, host=socket.gethostname(), pid=os.getpid(), message="")

    def end(self, exit_code: int, message: str = "") -> JobState:
        return replace(self, state=DONE if exit_code == 0 else FAILED, exit_code=exit_code, finished=time.time(),
                       message=message)


def state_path(job_path: Path) -> Path:
    return job_path.with_name(job_path.name.removesuffix(".json") + ".state.json")


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_job(path: Path) -> JobSpec:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read job spec {path}: {exc.strerror or exc}") from None
    return JobSpec.from_json(text, str(path))


def read_state(job_path: Path) -> JobState:
    """The job's state; a job never started (or with an unreadable state) is pending."""
    try:
        return JobState.from_mapping(json.loads(state_path(job_path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return JobState()


def write_state(job_path: Path, state: JobState) -> None:
    write_atomic(state_path(job_path), state.to_json())


@dataclass(frozen=True)
class PlanFiles:
    """The files of a plan directory, in run order."""

    root: Path
    kind: str
    jobs: tuple[Path, ...]
    create: Path | None = None
    workers: int = 1
    summary: tuple[str, ...] = field(default=())


def job_file(root: Path, job: JobSpec) -> Path:
    return root / "jobs" / f"{job.name}.json"


def write_plan(root: Path, kind: str, jobs: list[JobSpec], create: JobSpec | None, workers: int,
               summary: list[str]) -> PlanFiles:
    """Write plan.json and one spec per job.

    Writing the same plan again keeps the jobs' states, so a re-run resumes; a job whose spec changed
    loses its old state and runs again.
    """
    root = Path(root).absolute()
    paths = []
    for job in ([create] if create else []) + jobs:
        path = job_file(root, job)
        text = job.to_json()
        if path.is_file() and path.read_text(encoding="utf-8") != text:
            state_path(path).unlink(missing_ok=True)  # another job under this name: its old state says nothing
        write_atomic(path, text)
        paths.append(path)
    files = PlanFiles(root, kind, tuple(paths[1:] if create else paths), paths[0] if create else None,
                      workers, tuple(summary))
    body = {"version": FORMAT_VERSION, "kind": kind, "workers": workers, "summary": list(summary),
            "create": files.create.relative_to(root).as_posix() if files.create else None,
            "jobs": [p.relative_to(root).as_posix() for p in files.jobs]}
    write_atomic(root / "plan.json", json.dumps(body, indent=2))
    return files


def load_plan(root: Path) -> PlanFiles:
    root = Path(root).absolute()
    try:
        data = json.loads((root / "plan.json").read_text(encoding="utf-8"))
        create = root / data["create"] if data.get("create") else None
        return PlanFiles(root, data["kind"], tuple(root / p for p in data["jobs"]), create,
                         int(data.get("workers", 1)), tuple(data.get("summary", ())))
    except OSError:
        raise UsageError(f"{root} is not a plan directory (no readable plan.json): "
                         f"write one with `ndex plan ... --format json --plan_dir {root}`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{root / 'plan.json'} is damaged ({exc}): re-create the plan with `ndex plan`") from None


def plan_of(job_path: Path) -> PlanFiles | None:
    """The plan a job file belongs to (its directory's parent holds plan.json), if any."""
    root = Path(job_path).absolute().parent.parent
    return load_plan(root) if (root / "plan.json").is_file() else None
