"""`ndex`: the umbrella command. Each subcommand lives in its own module exposing
`configure(parser)` (adds its flags) and `run(args) -> int` (returns the exit code)."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from ndex import __version__
from ndex.cli.common import EXIT_USAGE, ArgumentParser, until_pipe_closed

SUBCOMMANDS = {
    "pull": ("ndex.cli.pull", "download a region of a channel (same as ndpull)"),
    "push": ("ndex.cli.push", "ingest image slices or stacks into a channel (same as ndpush)"),
    "plan": ("ndex.cli.plan", "cut a push or pull into parallel cuboid-aligned jobs and run them"),
    "run": ("ndex.cli.plan_run", "run one job spec written by `ndex plan --format json`"),
    "status": ("ndex.cli.plan_status", "show done/running/failed jobs of a plan directory"),
    "serve": ("ndex.cli.serve", "run a BOSS-v1-compatible spatial database"),
    "token": ("ndex.cli.token", "create, list or revoke API tokens of an `ndex serve` data directory"),
    "upgrade": ("ndex.cli.upgrade", "upgrade an `ndex serve` data directory written by an older release"),
    "backup": ("ndex.cli.backup", "copy an `ndex serve` data directory (SQLite catalog and store) consistently"),
    "demo": ("ndex.cli.demo", "start a local server, push a volume, pull a region back and verify it"),
    "verify": ("ndex.cli.verify", "verify an ingest: compare local images with what the server holds"),
    "info": ("ndex.cli.info", "show a server's collections, experiments, channels and extents"),
    "view": ("ndex.cli.view", "open neuroglancer on a channel of any BOSS server (prints the viewer URL)"),
}


# commands that run or open a server, and the modules of setup.py's `server` extra they import
NEEDS_SERVER = frozenset({"serve", "token", "upgrade", "backup", "demo"})
SERVER_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "alembic", "tensorstore")


def missing_extra(command: str | None) -> str | None:
    """The one-line error for a command whose optional packages are not installed; None if all are."""
    if command not in NEEDS_SERVER:
        return None
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"error: `ndex {command}` needs the server's packages ({', '.join(missing)} missing): "
            "pip install 'ndex[server]'")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (a server or Dask stays unloaded for a pull)."""
    parser = ArgumentParser(prog="ndex", description="Move image volumes in and out of BOSS spatial databases.")
    parser.add_argument("--version", action="version", version=f"ndex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.configure(child)
            child.set_defaults(_run=module.run)
    return parser


def chosen_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv

    def body() -> int:
        if (missing := missing_extra(chosen_command(argv))) is not None:
            print(missing, file=sys.stderr)
            return EXIT_USAGE
        parser = build_parser(chosen_command(argv))
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        return args._run(args)

    return until_pipe_closed(body)


if __name__ == "__main__":
    sys.exit(main())
