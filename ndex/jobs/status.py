"""What a plan directory says about its jobs: how many are done, running, failed or pending, and bytes."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ndex.jobs.spec import DONE, FAILED, PENDING, RUNNING, JobState, PlanFiles, read_job, read_state
from ndex.progress import mb


@dataclass(frozen=True)
class JobRow:
    name: str
    z: tuple[int, int] | None
    planned_bytes: int
    state: JobState


@dataclass(frozen=True)
class PlanStatus:
    files: PlanFiles
    rows: tuple[JobRow, ...]
    create: JobRow | None = None

    def count(self, state: str) -> int:
        return sum(1 for r in self.rows if r.state.state == state)

    def planned(self, state: str | None = None) -> int:
        return sum(r.planned_bytes for r in self.rows if state is None or r.state.state == state)

    @property
    def done_bytes(self) -> int:
        return self.planned(DONE)  # a done job has moved all it was planned to

    @property
    def complete(self) -> bool:
        return all(r.state.state == DONE for r in self.rows)

    def lines(self, now: float | None = None) -> list[str]:
        """The summary first, then one line per job that is not done."""
        now = time.time() if now is None else now
        total = self.planned()
        counts = ", ".join(f"{self.count(s)} {s}" for s in (DONE, RUNNING, FAILED, PENDING))
        pct = 100.0 * self.done_bytes / total if total else 100.0
        out = [f"plan {self.files.root} ({self.files.kind}): {len(self.rows)} jobs: {counts}",
               f"bytes: {mb(self.done_bytes)} of {mb(total)} done ({pct:.0f}%)"]
        if self.create is not None:
            out.append(f"create step: {self.create.state.state}")
        for row in self.rows:
            if row.state.state != DONE:
                out.append(job_line(row, now))
        return out


def job_line(row: JobRow, now: float) -> str:
    s = row.state
    where = f" z {row.z[0]}:{row.z[1]}" if row.z else ""
    text = f"  {row.name}{where}: {s.state}"
    if s.state == RUNNING and s.started:
        text += f" on {s.host} (pid {s.pid}) for {int(now - s.started)} s"
    if s.state == FAILED:
        text += f" after {s.attempts} attempt(s), exit code {s.exit_code}" + (f": {s.message}" if s.message else "")
    return text


def row_of(path: Path) -> JobRow:
    job = read_job(path)
    return JobRow(path.name.removesuffix(".json"), job.z, job.nbytes, read_state(path))


def plan_status(files: PlanFiles) -> PlanStatus:
    rows = tuple(row_of(p) for p in files.jobs)
    return PlanStatus(files, rows, row_of(files.create) if files.create else None)
