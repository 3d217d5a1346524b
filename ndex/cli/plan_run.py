"""`ndex run job.json`: run one job written by `ndex plan` and record its state beside it.

A job that is already done is not run again (`--force` runs it anyway); a data job of a push plan
refuses to start before the plan's resource-creating step is done. The exit code is the job's.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ndex.cli.common import EXIT_OK, run_guarded
from ndex.jobs.runners import run_job
from ndex.jobs.spec import read_job
from ndex.progress import mb


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="a job spec file written by `ndex plan --format json` (PLAN_DIR/jobs/job_N.json)")
    parser.add_argument("--force", action="store_true", help="run the job even if its state says it is done")


def invoke(argv: list[str]) -> int:
    """Run an `ndex` command line in this process; argparse's exits become exit codes."""
    from ndex.cli.main import main

    try:
        return int(main(argv) or 0)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)


def execute(args: argparse.Namespace) -> int:
    path = Path(args.job).absolute()
    job = read_job(path)
    if job.cwd:
        os.chdir(job.cwd)  # the job's relative paths (sources, outputs, logs) are relative to where it was planned
    state, ran = run_job(path, invoke, force=args.force)
    if not ran:
        print(f"{path.name}: already done ({mb(job.nbytes)}); --force runs it again", file=sys.stderr)
        return EXIT_OK
    return state.exit_code or EXIT_OK


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
