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
from typing import Any

from ndex.cli.common import EXIT_FAILED, EXIT_OK, ended_early, one_line, run_guarded, say_error
from ndex.cli.flags import flag_names
from ndex.cli.missing import CREATE_BY_PLAN, naming_missing
from ndex.client import BossClient
from ndex.config import discover
from ndex.errors import NdexError, UsageError
from ndex.jobs.runners import run_job
from ndex.jobs.spec import CREATE, JobSpec, read_job
from ndex.notify import job_log_name, make_notifier, open_job_log, report_message
from ndex.progress import mb
from ndex.transfer.download import pull
from ndex.transfer.options import TransferOptions
from ndex.transfer.pull_plan import PullSpec
from ndex.transfer.push_plan import PushSpec
from ndex.transfer.resources import CreateSpec, create, record_offsets
from ndex.transfer.upload import push

log = logging.getLogger("ndex.cli.run")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="a job spec file written by `ndex plan --format json` (PLAN_DIR/jobs/job_N.json)")
    parser.add_argument("--force", action="store_true", help="run the job even if its state says it is done")


def parse(job: JobSpec) -> tuple[Any, TransferOptions]:
    """The job's spec and options as the engine takes them; a damaged job file is one line, before any connection."""
    if job.kind == CREATE:
        return CreateSpec.from_dict(dict(job.spec)), TransferOptions()
    spec_type: Any = {"push": PushSpec, "pull": PullSpec}.get(job.kind)
    if spec_type is None:
        raise UsageError(f"unknown job kind {job.kind!r}: re-create the plan with `ndex plan`")
    try:
        return spec_type.from_dict(dict(job.spec)), TransferOptions.from_dict(dict(job.options))
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{job.name} holds no valid {job.kind} spec ({exc}): re-create the plan with `ndex plan`") \
            from None


def execute_job(job: JobSpec) -> int:
    """Hand the job's spec and options to the engine; print its report; the exit code of its outcome."""
    with flag_names():
        spec, options = parse(job)
    remote = discover(url=job.url, config_file=job.config_file)
    notifier = make_notifier(**(job.notify or {}))
    handler = open_log(job, spec, remote.token)
    try:
        with BossClient(remote, threads=options.threads) as client, flag_names():
            if job.kind == CREATE:
                for line in create(client, spec):
                    log.info("%s", line)
                    print(line, file=sys.stderr)
                return EXIT_OK
            with naming_missing(client, spec.ref, CREATE_BY_PLAN if job.kind == "push" else None):
                report = run_transfer(job, spec, options, client, notifier)
    except NdexError as exc:
        log.error("%s stopped: %s", job.name, one_line(exc))
        notifier.send(f"{job.kind} {job.name} stopped: {one_line(exc)}")
        raise
    finally:
        if handler is not None:
            handler.close()
    code = finish(report)
    title = f"ndex run {job.name} ({job.kind} {spec.ref}) {'finished' if report.ok else 'FAILED'}"
    notifier.send(report_message(title, [report.summary(), *report.failure_lines(5), *report.notes]))
    return code


def run_transfer(job: JobSpec, spec: Any, options: TransferOptions, client: BossClient, notifier) -> Any:
    """The job's push or pull, as ndpush or ndpull would run it."""
    if job.kind == "push":
        record_offsets(client, spec.ref, spec.offsets)  # as ndpush does: the frame's offsets stay known
        return push(spec, options, client=client, notifier=notifier)
    return pull(spec, options, client=client)


def open_log(job: JobSpec, spec: Any, token: str | None) -> logging.Handler | None:
    """The job's log file (a push's, and its create step's), named as ndpush names its log."""
    if job.log_dir is None:
        return None
    ref = spec.resources.ref if job.kind == CREATE else spec.ref
    z = spec.source.z_range if job.kind == "push" else None
    path = Path(job.log_dir) / job_log_name(ref.collection, ref.experiment, ref.channel, z)
    path.parent.mkdir(parents=True, exist_ok=True)
    return open_job_log(path, secrets=[token] if token else [])


def finish(report) -> int:
    print(report.summary())
    if (code := ended_early(report)) is not None:
        return code
    failures = report.failure_lines()
    if failures:  # the first names the cause: logged too, it is the job's message in `ndex status`
        say_error(failures[0])
    for line in failures[1:] + report.notes:
        print(line, file=sys.stderr)
    if report.files:  # a pull's output, as ndpull says it
        print(f"wrote {len(report.files)} file(s) to {report.files[0] if len(report.files) == 1 else report.files[0].parent}")
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
