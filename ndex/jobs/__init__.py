"""Running a plan's jobs: job specs and states on disk, text formats, local and Dask runners.

The partition itself (which z ranges, what they cost) is pure and lives in `ndex.plan`.
"""
from ndex.jobs.runners import Outcome, drive, run_job, unfinished
from ndex.jobs.spec import JobSpec, JobState, PlanFiles, load_plan, read_job, read_state, write_plan
from ndex.jobs.status import PlanStatus, plan_status

__all__ = ["JobSpec", "JobState", "Outcome", "PlanFiles", "PlanStatus", "drive", "load_plan", "plan_status",
           "read_job", "read_state", "run_job", "unfinished", "write_plan"]
