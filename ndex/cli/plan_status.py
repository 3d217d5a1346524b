"""`ndex status PLAN_DIR`: done / running / failed / pending jobs of a plan, and bytes."""
from __future__ import annotations

import argparse

from ndex.cli.common import EXIT_FAILED, EXIT_OK, run_guarded
from ndex.jobs.spec import FAILED, load_plan
from ndex.jobs.status import plan_status


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_dir", help="a plan directory written by `ndex plan` (json, slurm or --run)")


def execute(args: argparse.Namespace) -> int:
    status = plan_status(load_plan(args.plan_dir))
    print("\n".join(status.lines()))
    return EXIT_FAILED if status.count(FAILED) else EXIT_OK


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: execute(args))
