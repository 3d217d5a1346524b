"""`ndex run job.json`: run one job written by `ndex plan` and record its state beside it.

The job's spec and options go straight to the engine (`push()` / `pull()`; a create step's to
`resources.create`). The token comes from the environment or a config file, never from the job file.
A job that is already done is not run again (`--force` runs it anyway); a data job of a push plan
refuses to start before the plan's resource-creating step is done. The exit code is the job's.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ndex.cli.common import EXIT_FAILED, EXIT_OK, one_line, quota_ended, run_guarded
from ndex.cli.flags import flag_names
from ndex.client import BossClient
from ndex.config import discover
from ndex.errors import NdexError
from ndex.jobs.runners import run_job
from ndex.jobs.spec import CREATE, JobSpec, read_job
from ndex.notify import job_log_name, open_job_log
from ndex.progress import mb
from ndex.transfer.download import pull
from ndex.transfer.options import TransferOptions
from ndex.transfer.pull_plan import PullSpec
from ndex.transfer.push_plan import PushSpec
from ndex.transfer.resources import CreateSpec, create
from ndex.transfer.upload import push

log = logging.getLogger("ndex.cli.run")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="a job spec file written by `ndex plan --format json` (PLAN_DIR/jobs/job_N.json)")
    parser.add_argument("--force", action="store_true", help="run the job even if its state says it is done")


def log_name(job: JobSpec) -> str | None:
    """The job's log file, named as ndpush names its log (ingest_log_<coll>_<exp>_<chan>_<z0>_<z1>.txt)."""
    if job.log_dir is None:
        return None
    if job.kind == CREATE:
        ref = CreateSpec.from_dict(dict(job.spec)).resources.ref
        return str(Path(job.log_dir) / job_log_name(ref.collection, ref.experiment, ref.channel, None))
    spec = PushSpec.from_dict(dict(job.spec)) if job.kind == "push" else None
    ref = spec.ref if spec else PullSpec.from_dict(dict(job.spec)).ref
    z = spec.source.z_range if spec else None
    return str(Path(job.log_dir) / job_log_name(ref.collection, ref.experiment, ref.channel, z))


def execute_job(job: JobSpec) -> int:
    """Hand the job's spec and options to the engine; print its report; the exit code of its outcome."""
    remote = discover(url=job.url, config_file=job.config_file)
    options = TransferOptions.from_dict(dict(job.options)) if job.kind != CREATE else TransferOptions()
    path = log_name(job)
    handler = None
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = open_job_log(Path(path), secrets=[remote.token] if remote.token else [])
    try:
        with BossClient(remote, threads=options.threads) as client, flag_names():
            if job.kind == CREATE:
                for line in create(client, CreateSpec.from_dict(dict(job.spec))):
                    log.info("%s", line)
                    print(line, file=sys.stderr)
                return EXIT_OK
            if job.kind == "push":
                report = push(PushSpec.from_dict(dict(job.spec)), options, client=client)
            else:
                report = pull(PullSpec.from_dict(dict(job.spec)), options, client=client)
    except NdexError as exc:
        log.error("%s stopped: %s", job.name, one_line(exc))
        raise
    finally:
        if handler is not None:
            handler.close()
    return finish(report)


def finish(report) -> int:
    print(report.summary())
    if (code := quota_ended(report)) is not None:
        return code
    for line in report.failure_lines() + report.notes:
        print(line, file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def execute(args: argparse.Namespace) -> int:
    path = Path(args.job).absolute()
    job = read_job(path)
    if job.cwd:
        os.chdir(job.cwd)  # the job's relative paths (sources, outputs, logs) are relative to where it was planned
    state, ran = run_job(path, lambda j: run_guarded(lambda: execute_job(j)), force=args.force)
    if not ran:
        print(f"{path.name}: already done ({mb(job.nbytes)}); --force runs it again", file=sys.stderr)
        return EXIT_OK
    return state.exit_code or EXIT_OK


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
