"""Job states and runners: run once, refuse to start before the create step, retry, stay bounded, report."""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import pytest

from ndex.errors import UsageError
from ndex.jobs.runners import LocalPool, drive, run_job, unfinished
from ndex.jobs.spec import (
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    JobSpec,
    JobState,
    read_state,
    write_plan,
    write_state,
)
from ndex.jobs.status import plan_status

SPEC = {"ref": "c/e/ch", "source": {"base_path": "/nowhere", "base_filename": "img_<p:4>"}}


def make_plan(root, n=3, create=False, spec=SPEC):
    jobs = [JobSpec(i, "push", spec, {"threads": 2}, (16 * i, 16 * i + 16), nbytes=1000 * (i + 1))
            for i in range(n)]
    step = JobSpec(-1, "create", {}) if create else None
    return write_plan(root, "push", jobs, step, workers=2, summary=[])


def test_run_job_records_running_then_done_and_does_not_repeat(tmp_path):
    files = make_plan(tmp_path)
    seen = []

    def execute(job):
        seen.append((job.spec, job.options, read_state(files.jobs[0]).state))
        return 0

    state, ran = run_job(files.jobs[0], execute)
    assert ran and state.state == DONE and plan_status(files).done_bytes == 1000 and state.attempts == 1
    assert seen == [(SPEC, {"threads": 2}, RUNNING)]
    assert read_state(files.jobs[0]) == state
    state, ran = run_job(files.jobs[0], execute)
    assert not ran and len(seen) == 1
    state, ran = run_job(files.jobs[0], execute, force=True)
    assert ran and state.attempts == 2


def test_failed_and_interrupted_jobs_are_recorded_failed(tmp_path):
    files = make_plan(tmp_path)
    state, _ = run_job(files.jobs[0], lambda job: 3)
    assert state.state == FAILED and state.exit_code == 3 and plan_status(files).done_bytes == 0
    assert "exited with code 3" in state.message

    def interrupted(job):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(files.jobs[1], interrupted)
    assert read_state(files.jobs[1]).state == FAILED
    assert unfinished(files.jobs) == list(files.jobs)


def test_data_jobs_wait_for_the_create_step(tmp_path):
    files = make_plan(tmp_path, create=True)
    with pytest.raises(UsageError, match="not created yet: run `ndex run .*create.json` first"):
        run_job(files.jobs[0], lambda job: 0)
    assert read_state(files.jobs[0]).state == PENDING  # nothing started
    run_job(files.create, lambda job: 0)
    assert run_job(files.jobs[0], lambda job: 0)[0].state == DONE


class FakePool:
    """Runs attempts on threads; attempt 1 of the jobs in `fail_once` fails. Tracks concurrency."""

    def __init__(self, fail_once=(), workers=8):
        self.executor = ThreadPoolExecutor(workers)
        self.fail_once = set(fail_once)
        self.active = self.peak = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()

    def _attempt(self, path, attempt):
        from ndex.jobs.runners import Outcome

        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        self.gate.wait(0.05)
        ok = not (path.name in self.fail_once and attempt == 1)
        state = JobState().begin().end(0 if ok else 1)
        write_state(path, state)
        with self.lock:
            self.active -= 1
        return Outcome(path, state, attempt)

    def submit(self, path, attempt):
        return self.executor.submit(self._attempt, path, attempt)

    def wait_first(self, futures):
        return wait(futures, return_when=FIRST_COMPLETED).done


def test_drive_is_bounded_retries_and_reports_each_attempt(tmp_path):
    files = make_plan(tmp_path, n=6)
    pool = FakePool(fail_once={"job_2.json"})
    heard = []
    outcomes = drive(pool, list(files.jobs), workers=2, retries=1, on_finish=lambda o, r: heard.append((o.name, r)))
    assert [o.ok for o in outcomes] == [True] * 6
    assert pool.peak <= 2
    assert ("job_2", True) in heard and heard.count(("job_2", False)) == 1
    assert len(heard) == 7


def test_drive_gives_up_after_the_retries(tmp_path):
    files = make_plan(tmp_path, n=2)
    pool = FakePool(fail_once={"job_1.json"})
    outcomes = drive(pool, list(files.jobs), workers=4, retries=0)
    assert [o.ok for o in outcomes] == [True, False]
    assert unfinished(files.jobs) == [files.jobs[1]]


class DyingWorkers(FakePool):
    """Every worker fails after its attempt: once the job wrote `done`, or while it is still running."""

    def __init__(self, after_done: bool):
        super().__init__()
        self.after_done = after_done

    def _attempt(self, path, attempt):
        if self.after_done:
            super()._attempt(path, attempt)
        else:
            write_state(path, JobState().begin())
        raise OSError("worker lost")


def test_a_worker_failing_after_its_job_wrote_done_leaves_the_job_done(tmp_path):
    files = make_plan(tmp_path, n=2)
    heard = []
    outcomes = drive(DyingWorkers(after_done=True), list(files.jobs), workers=2, retries=1,
                     on_finish=lambda o, r: heard.append((o.name, r)))
    assert [o.ok for o in outcomes] == [True, True]
    assert [read_state(p).state for p in files.jobs] == [DONE, DONE]
    assert sorted(heard) == [("job_0", False), ("job_1", False)]  # nothing retried


def test_a_worker_failing_while_its_job_runs_records_the_job_failed(tmp_path):
    files = make_plan(tmp_path, n=1)
    outcomes = drive(DyingWorkers(after_done=False), list(files.jobs), workers=1, retries=1)
    assert not outcomes[0].ok and outcomes[0].attempt == 2
    state = read_state(files.jobs[0])
    assert state.state == FAILED and state.message == "OSError: worker lost"
    assert outcomes[0].output_tail == "worker lost"


def test_local_pool_runs_ndex_run_processes(tmp_path):
    good = make_plan(tmp_path / "good", n=1)
    write_state(good.jobs[0], JobState().begin().end(0))  # `ndex run` of a done job succeeds at once
    bad = make_plan(tmp_path / "bad", n=1, spec={"ref": "c/e/ch", "source": {}, "bogus": 1})
    pool = LocalPool(2)
    try:
        outcomes = drive(pool, [good.jobs[0], bad.jobs[0]], workers=2)
    finally:
        pool.close()
    assert outcomes[0].ok and outcomes[0].nbytes == 1000
    assert not outcomes[1].ok and outcomes[1].state.exit_code == 2
    assert "unknown push spec field(s) bogus" in outcomes[1].output_tail
    assert (bad.jobs[0].with_name("job_0.out")).read_text().strip()


def test_status_counts_jobs_and_bytes(tmp_path):
    files = make_plan(tmp_path, n=4)
    write_state(files.jobs[0], JobState().begin().end(0))
    write_state(files.jobs[1], JobState().begin())
    write_state(files.jobs[2], JobState().begin().end(4, "error: no such file img_0040.tif"))
    status = plan_status(files)
    assert (status.count(DONE), status.count(RUNNING), status.count(FAILED), status.count(PENDING)) == (1, 1, 1, 1)
    lines = status.lines()
    assert "4 jobs: 1 done, 1 running, 1 failed, 1 pending" in lines[0]
    assert "0.0 MB of 0.0 MB done (10%)" in lines[1]
    assert any("job_2 z 32:48: failed after 1 attempt(s), exit code 4: error: no such file" in s for s in lines)
    assert any(s.startswith("  job_1 z 16:32: running on ") for s in lines)
    assert not status.complete
