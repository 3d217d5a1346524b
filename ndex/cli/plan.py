"""`ndex plan push|pull ...`: cut one big ingest or download into cuboid-aligned jobs, write them out or run them.

The arguments are those of ndpush / ndpull (parsed by their own parsers) plus the planner's. The
plan goes to stdout as command lines (`--format shell|cmd`), into a plan directory (`--format json`,
`--format slurm`), or is run at once (`--run local`, `--run dask://HOST:PORT`).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ndex.cli.common import (
    EXIT_FAILED,
    EXIT_LOCAL_IO,
    EXIT_OK,
    EXIT_REMOTE,
    EXIT_USAGE,
    parse_size,
    run_guarded,
    setup_logging,
)
from ndex.cli.flags import flag_names
from ndex.cli.missing import CREATE_HERE, naming_missing
from ndex.cli.plan_argv import job_argv
from ndex.client import BossClient
from ndex.config import discover
from ndex.errors import UsageError
from ndex.geometry import Box, z_slabs
from ndex.jobs import formats
from ndex.jobs.runners import LocalPool, Outcome, drive, run_subprocess, unfinished
from ndex.jobs.spec import CREATE, DONE, JobSpec, PlanFiles, read_state, write_plan
from ndex.jobs.status import plan_status
from ndex.notify import job_log_name
from ndex.plan import Job, Partition, partition, pull_footprint, pull_job, push_footprint, push_job
from ndex.progress import mb
from ndex.transfer import probe, pull_plan
from ndex.transfer.options import TransferOptions
from ndex.transfer.probe import Probe
from ndex.transfer.push_plan import make_plan
from ndex.transfer.resources import CreateSpec, load_metadata
from ndex.transfer.upload import PushSpec

FORMATS = ("shell", "cmd", "json", "slurm")
TOOLS = {"push": ("ndex.cli.push", "plan an ingest (the arguments of ndpush)"),
         "pull": ("ndex.cli.pull", "plan a download (the arguments of ndpull)")}
EPILOG = """\
examples:
  ndex plan push --collection c --experiment e --channel ch --base_path /data --base_filename 'img_<p:4>' \\
      --extension tif --x_extent 0 4096 --y_extent 0 4096 --z_extent 0 2000 --voxel_size 4 4 40 \\
      --voxel_unit nanometers --datatype uint16 --workers 8 --memory_per_worker 8GB
                                           (ndex 1.x-style commands, one per line)
  ndex plan pull ... --workers 4 --format json --plan_dir big_pull   (then: ndex run big_pull/jobs/job_0.json)
  ndex plan push ... --workers 16 --format slurm --plan_dir ingest   (one sbatch array script)
  ndex plan push ... --workers 4 --run local                         (a pool of 4 processes here)
  ndex plan push ... --workers 32 --run dask://scheduler:8786        (an existing Dask cluster)
  ndex status ingest                                                 (done/running/failed jobs and bytes)
With --create_resources, a push plan creates (or checks) the resources once, before the data jobs.
A pull into one file (--stack_filename) writes one file per job, named with the job's z range.
Re-running a plan (same arguments, same --plan_dir) runs only the jobs that are not done.
"""


def parse_rate(text: str) -> float:
    """'200MB/s', '1.5GB/s', '2e8' -> bytes per second."""
    raw = text.strip()
    return float(parse_size(raw[:-2] if raw.lower().endswith("/s") else raw))


def add_planner_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("plan")
    g.add_argument("--workers", type=int, help="jobs that run at once; also the number of jobs, unless --jobs")
    g.add_argument("--memory_per_worker", type=parse_size,
                   help="memory of one worker, e.g. 8GB: each job's slabs and blocks in flight are fitted to it")
    g.add_argument("--jobs", type=int, help="number of jobs to cut (default: --workers, else one per 1024 slices)")
    g.add_argument("--format", choices=FORMATS,
                   help="shell: ndex 1.x-style command lines (default); cmd: the same with Windows quoting; "
                        "json: a plan directory of job specs (`ndex run job.json`); slurm: plus an sbatch array script")
    g.add_argument("--run", metavar="local|dask://HOST:PORT",
                   help="run the plan now: on a pool of --workers processes here, or on an existing Dask cluster")
    g.add_argument("--plan_dir", help="plan directory for json/slurm/--run (default: ./ndex_plan_<coll>_<exp>_<chan>)")
    g.add_argument("--throughput", type=parse_rate,
                   help="measured rate of one job, e.g. 200MB/s, for the time estimate")
    g.add_argument("--probe", action="store_true",
                   help="measure one job's rate for the time estimate (not with --throughput): a pull GETs a "
                        "few blocks of the region; a push reads the first 16 slices and POSTS them (the data "
                        "the first job posts) into the channel, if it exists")
    g.add_argument("--retries", type=int, default=1, help="with --run: times a failed job is retried (default 1)")
    g.add_argument("--connect_timeout", type=float, default=10.0,
                   help="with --run dask://: seconds to wait for the scheduler before giving up (default 10)")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    sub = parser.add_subparsers(dest="plan_tool", metavar="push|pull")
    for name, (module_name, help_text) in TOOLS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # that command is not in this build
        tool = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(tool)
        tool.epilog = EPILOG
        add_planner_flags(tool)


def cut(args: argparse.Namespace, z: tuple[int, int], footprint, measured: Probe | None = None):
    return partition(z, footprint, workers=args.workers, jobs=args.jobs,
                     throughput=measured.throughput if measured else args.throughput,
                     measured=tuple(measured.lines()) if measured else ())


def open_client(args: argparse.Namespace, threads: int = 1) -> BossClient:
    """The planner's client; with --probe it gives up after a couple of retries (a probe measures, it does not
    wait out a failing server)."""
    remote = discover(url=args.url, token=args.token,
                      config_file=args.config_file or getattr(args, "boss_config_file", None))
    retries: dict[str, Any] = {"retries": probe.PROBE_RETRIES} if args.probe else {}
    return BossClient(remote, threads=threads, **retries)


def warn_token(args: argparse.Namespace) -> None:
    if args.token and not args.run:
        print("note: the --token you gave is not written into the jobs: set NDEX_TOKEN or a config file "
              "where they run", file=sys.stderr)


@dataclass(frozen=True)
class Draft:
    """A partition and the spec each job runs: `pull_job`/`push_job` of the whole spec, with the options.

    A push's jobs log (and keep their resume manifest) in PLAN_DIR/logs/job_<i>; without a plan
    directory, in the user's --log_dir. A push plan may start with a resource-creating step.
    """

    kind: str  # "push" | "pull"
    partition: Partition
    specs: tuple[tuple[Job, Any], ...]  # (job, its spec), channels of a push one after the other
    options: TransferOptions
    whole: Any  # the spec of the whole range (the create step is rendered with it)
    create: CreateSpec | None = None
    log_dir: str | None = None
    default_dir: str = "ndex_plan"
    url: str | None = None
    config_file: str | None = None
    notify: dict[str, str] | None = None

    @property
    def cpus(self) -> int:
        return self.options.threads


def job_log_dir(draft: Draft, root: Path | None, name: str) -> str | None:
    if draft.kind != "push":
        return None
    return str(root / "logs" / name) if root is not None else draft.log_dir


def push_manifest(spec: PushSpec, log_dir: str | None) -> str | None:
    """The resume manifest beside the job's log, named as ndpush names it."""
    if log_dir is None:
        return None
    from ndex.cli.push import timed_log_name

    ref = spec.ref
    name = job_log_name(ref.collection, ref.experiment, ref.channel, spec.source.z_range)
    return str(Path(log_dir) / (timed_log_name(name, spec.time_sample) + ".manifest.sqlite"))


def job_specs(draft: Draft, root: Path | None) -> tuple[list[JobSpec], JobSpec | None]:
    cwd = os.getcwd()
    where: dict[str, Any] = {"cwd": cwd, "url": draft.url, "config_file": draft.config_file, "notify": draft.notify}
    jobs = []
    for index, (j, spec) in enumerate(draft.specs):
        log_dir = job_log_dir(draft, root, f"job_{index}")
        options = replace(draft.options, manifest=push_manifest(spec, log_dir)) if draft.kind == "push" else draft.options
        jobs.append(JobSpec(index, draft.kind, spec.to_dict(), options.to_dict(), j.z, j.nbytes, j.requests,
                            j.memory, j.seconds, log_dir=log_dir, process_memory=j.process_memory, **where))
    create = None
    if draft.create is not None:
        create = JobSpec(-1, CREATE, draft.create.to_dict(), log_dir=job_log_dir(draft, root, "create"), **where)
    return jobs, create


def remote_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"url": args.url, "config_file": args.config_file or getattr(args, "boss_config_file", None)}


def pull_draft(args: argparse.Namespace) -> Draft:
    """A pull plan: the channel's dtype and extent come from the server."""
    from ndex.cli import pull as tool

    if args.print_metadata:
        raise UsageError("--print_metadata is not a download to plan: run `ndpull --print_metadata ...` instead")
    spec = tool.build_spec(args)
    options = tool.build_options(args).with_memory_cap(args.memory_per_worker)
    with open_client(args, options.threads) as client, memory_flag(args):
        with naming_missing(client, spec.ref):
            info = client.channel_info(spec.ref)
        box, _ = pull_plan.resolve_region(client, spec, info)
        spec = replace(spec, box=box)
        footprint = pull_footprint(spec, options, info, box)
        measured = probe.probe_pull(client, spec, options, info, box) if args.probe else None
    warn_token(args)
    parts = cut(args, box.z, footprint, measured)
    return Draft("pull", parts, tuple((j, pull_job(spec, j)) for j in parts.jobs), options, spec,
                 default_dir=f"ndex_plan_{spec.ref.prefix}", **remote_of(args))


def open_push_source(args: argparse.Namespace):
    """The first channel's source, validated: bad images or extents fail here, before any job exists."""
    from ndex.cli import push as tool
    from ndex.sources import open_source

    tool.check_names(args)
    picks = tool.volume_picks(args, tool.channel_names(args))  # (channel, source channel, time point) per run
    source = open_source(tool.source_spec(args, *picks[0]))
    try:
        source.validate()
    except BaseException:
        source.close()
        raise
    return source, picks


def push_draft(args: argparse.Namespace) -> Draft:
    """A push plan, made from the flags and the images alone: the channel may not exist yet."""
    from ndex.cli import push as tool
    from ndex.client import ChannelRef
    from ndex.transfer.upload import source_box

    if args.downsample:
        raise UsageError("--downsample runs once for the whole channel: plan without it, and start the "
                         "downsample after every job is done (e.g. `ndpush ... --z_range Z0 Z1 --downsample` "
                         "re-running the last job)")
    metadata = load_metadata(args.metadata, args.metadata_schema) if args.metadata else None
    source, picks = open_push_source(args)
    try:
        extents = tool.data_extents(args, source)
        offsets = tool.offsets_for(args, extents, source)
        box = source_box(source, offsets)  # BOSS coordinates of the slices to ingest
        refs = [ChannelRef(args.collection, args.experiment, name) for name, _, _ in picks]
        specs = [tool.push_spec(args, ref, tool.source_spec(args, *pick), offsets) for ref, pick in zip(refs, picks)]
        options = tool.push_options(args, None).with_memory_cap(args.memory_per_worker)
        with memory_flag(args):  # the footprint first: a plan that cannot fit fails before a probe sends anything
            footprint = push_footprint(specs[0], options, box, source.dtype.itemsize,
                                       getattr(source, "chunk_bytes", 0))
            measured = measure_push(args, specs[0], options, source, box) if args.probe else None
        create = tool.create_spec(args, refs[0], source, extents, offsets, metadata) if args.create_resources else None
        if args.run and create is None:
            check_targets(args, specs, options, source)
    finally:
        source.close()
    warn_token(args)
    parts = cut(args, box.z, footprint, measured)
    # channels of a --channels_list_file are jobs of their own, one channel after the other
    cut_specs = tuple((j, push_job(spec, j)) for spec in specs for j in parts.jobs)
    return Draft("push", parts, cut_specs, options, specs[0], create, log_dir=args.log_dir,
                 default_dir=f"ndex_plan_{refs[0].prefix}", notify=slack_of(args), **remote_of(args))


def check_targets(args: argparse.Namespace, specs: list[PushSpec], options: TransferOptions, source) -> None:
    """--run into channels that exist: the jobs start now, so what each would refuse at its start (no such
    channel, another datatype, a frame that does not reach the data) is refused here, before a plan exists.
    A plan written to files is not checked: its channel may be created before the jobs run."""
    with open_client(args, 1) as client, flag_names():
        for spec in specs:
            with naming_missing(client, spec.ref, CREATE_HERE):
                make_plan(client, spec, options, source)


def slack_of(args: argparse.Namespace) -> dict[str, str] | None:
    """Whom a push job tells about its start, failures and end (ndpush's Slack flags; never a secret)."""
    given = {"token_file": args.slack_token_file, "user": args.slack_usr, "channel": args.slack_channel}
    if args.slack_webhook:
        print("note: --slack_webhook is not written into the jobs: set SLACK_WEBHOOK_URL where they run",
              file=sys.stderr)
    return {k: v for k, v in given.items() if v} or None


@contextmanager
def memory_flag(args: argparse.Namespace) -> Iterator[None]:
    """A memory cap too small is named by the flag that set the tighter cap."""
    tighter = args.memory_per_worker is not None and (args.max_memory is None
                                                      or args.memory_per_worker <= args.max_memory)
    with flag_names(max_memory="--memory_per_worker" if tighter else "--max_memory"):
        yield


def measure_push(args: argparse.Namespace, spec: PushSpec, options: TransferOptions, source, box: Box) -> Probe:
    """--probe: the first job's first slab, read from `source` and posted as that job would post it."""
    with open_client(args, options.threads) as client:
        return probe.probe_push(client, spec, options, source, z_slabs(box)[0])


DRAFTERS = {"pull": pull_draft, "push": push_draft}


def check_choices(args: argparse.Namespace) -> None:
    if not getattr(args, "plan_tool", None):
        raise UsageError("say what to plan: `ndex plan push ...` or `ndex plan pull ...`")
    if args.run and args.format not in (None, "json"):
        raise UsageError(f"--run writes and runs a json plan directory: drop --format {args.format}")
    if args.run and args.run != "local" and not args.run.startswith(("dask://", "tcp://", "tls://")):
        raise UsageError(f"--run {args.run!r}: use local or dask://HOST:PORT")
    if args.retries < 0:
        raise UsageError(f"--retries {args.retries} must not be negative")
    if args.probe and args.throughput is not None:
        raise UsageError("--probe measures the rate that --throughput gives: use one or the other, not both")


def open_pool(args: argparse.Namespace, workers: int):
    """The pool to run on, connected before anything is written or started."""
    if args.run == "local":
        return LocalPool(workers)
    from ndex.jobs.dask_pool import DaskPool, connect

    return DaskPool(connect(args.run, timeout=args.connect_timeout))


def print_summary(draft: Draft) -> None:
    for line in draft.partition.describe():
        print(line, file=sys.stderr)


def write_dir(args: argparse.Namespace, draft: Draft) -> PlanFiles:
    root = Path(args.plan_dir or draft.default_dir).absolute()
    jobs, create = job_specs(draft, root)
    files = write_plan(root, draft.kind, jobs, create, draft.partition.workers, draft.partition.describe())
    (root / "logs").mkdir(parents=True, exist_ok=True)
    return files


def emit(args: argparse.Namespace, draft: Draft) -> int:
    """--format shell|cmd|json|slurm: write the plan out, start nothing."""
    fmt = args.format or "shell"
    if fmt in ("shell", "cmd"):
        jobs, create = job_specs(draft, None)
        argvs = [job_argv(j, draft.whole) for j in ([create] if create else []) + jobs]
        print("\n".join(formats.shell_lines(argvs, "posix" if fmt == "shell" else "cmd")))
        if create is not None:
            print("run the first command once, before the others: it creates the resources", file=sys.stderr)
        return EXIT_OK
    files = write_dir(args, draft)
    if fmt == "slurm":
        script = files.root / "ndex_plan.sbatch"
        jobs, _ = job_specs(draft, files.root)
        script.write_text(formats.slurm_script(files, jobs, cpus=draft.cpus, workers=args.workers,
                                               job_name=f"ndex-{draft.kind}"), encoding="utf-8")
        first = f"ndex run {files.create} && " if files.create else ""
        print(f"{first}sbatch {script}")
        return EXIT_OK
    if files.create:
        print(f"ndex run {files.create}")
    for path in files.jobs:
        print(f"ndex run {path}")
    return EXIT_OK


def report(outcome: Outcome, will_retry: bool) -> None:
    s = outcome.state
    took = f"{s.finished - s.started:.1f} s" if s.finished and s.started else ""
    if outcome.ok:
        print(f"done    {outcome.name}: {mb(outcome.nbytes)} in {took}", flush=True)
        return
    again = f"; retrying (attempt {outcome.attempt + 1})" if will_retry else ""
    print(f"failed  {outcome.name} (attempt {outcome.attempt}, exit code {s.exit_code}): {s.message}{again}",
          flush=True)


def run_plan(args: argparse.Namespace, draft: Draft, pool, workers: int) -> int:
    files = write_dir(args, draft)
    if files.create and read_state(files.create).state != DONE:
        print("creating the resources (once, before the data jobs)", flush=True)
        outcome = run_subprocess(str(files.create))
        report(outcome, False)
        if not outcome.ok:
            print(outcome.output_tail, file=sys.stderr)
            return exit_code_of([outcome])
    todo = unfinished(files.jobs)
    print(f"running {len(todo)} of {len(files.jobs)} jobs ({len(files.jobs) - len(todo)} done earlier), "
          f"{min(workers, max(1, len(todo)))} at a time; plan in {files.root}", flush=True)
    outcomes = drive(pool, todo, workers=workers, retries=args.retries, on_finish=report)
    status = plan_status(files)
    print("\n".join(status.lines()))
    if any(not o.ok for o in outcomes):
        print(f"some jobs failed: see their logs in {files.root / 'logs'} and `ndex status {files.root}`; "
              "re-running the same command runs only the unfinished jobs", file=sys.stderr)
    return exit_code_of(outcomes)


def exit_code_of(outcomes: list[Outcome]) -> int:
    """0 if every job is done; the failed jobs' exit code if they agree on what failed (bad input, the
    server, local files), so a script tells a bad slice from a network failure; else EXIT_FAILED."""
    codes = {o.state.exit_code for o in outcomes if not o.ok}
    if not codes:
        return EXIT_OK
    code = codes.pop()
    return code if not codes and code in (EXIT_USAGE, EXIT_REMOTE, EXIT_LOCAL_IO) else EXIT_FAILED


def execute(args: argparse.Namespace) -> int:
    check_choices(args)
    setup_logging(args.verbose, args.quiet)
    draft = DRAFTERS[args.plan_tool](args)
    print_summary(draft)
    if not args.run:
        return emit(args, draft)
    workers = draft.partition.workers
    if args.token:  # the jobs run as child processes of this one: they find the token where the planner did
        os.environ["NDEX_TOKEN"] = args.token
    if args.run == "local" and args.workers is None:
        workers = min(workers, os.cpu_count() or 1)  # one job per core here unless told otherwise
    pool = open_pool(args, workers)
    try:
        return run_plan(args, draft, pool, workers)
    finally:
        pool.close()


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
