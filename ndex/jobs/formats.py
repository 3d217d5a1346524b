"""A plan as text: command lines (POSIX or Windows quoting; `cli/plan_argv.py` renders them from the job
specs) and a SLURM array script."""
from __future__ import annotations

import shlex
from collections.abc import Sequence

from ndex.errors import UsageError
from ndex.geometry import ceil_div
from ndex.jobs.spec import JobSpec, PlanFiles

STYLES = ("posix", "cmd")
# the interpreter, numpy, the HTTP pool and codecs, on top of the data the engine holds, for an engine
# without an estimate of its whole process (pull); measured RSS of an idle `ndex run` is well under this
PROCESS_OVERHEAD = 256 * 2**20


CMD_SPECIAL = frozenset('<>|&^()"')  # what cmd.exe acts on outside double quotes


def command_line(argv: Sequence[str], style: str = "posix") -> str:
    """One command line that a POSIX shell (shlex quoting) or Windows cmd.exe (`cmd_quote`) splits back to argv."""
    if style == "posix":
        return shlex.join(argv)
    if style == "cmd":
        return " ".join(cmd_quote(arg) for arg in argv)
    raise UsageError(f"unknown quoting style {style!r}: use one of {', '.join(STYLES)}")


def cmd_quote(arg: str) -> str:
    """`arg` as cmd.exe passes it on and the program's C runtime splits it back, unchanged.

    Two parsers read a Windows command line: cmd.exe first (outside double quotes `<`, `>`, `|`, `&`
    redirect or chain and `^` escapes), then the program's C runtime (backslashes count only before a
    quote). An argument with a blank or a cmd character is put in double quotes; one that holds a double
    quote itself would flip cmd's quote state, so there every cmd character, quotes included, is escaped
    with `^` as well. `%` expands variables even inside quotes and a line break ends the command: neither
    can be written, and saying so beats a command that does something else.
    """
    if "%" in arg or "\n" in arg or "\r" in arg:
        raise UsageError(f"{arg!r} holds a % or a line break, which a cmd.exe command line cannot carry: "
                         "rename it, or use --format json and `ndex run`")
    if arg and not CMD_SPECIAL.union(" \t").intersection(arg):
        return arg
    quoted = _runtime_quoted(arg)
    if '"' not in arg:
        return quoted
    return "".join("^" + ch if ch in CMD_SPECIAL else ch for ch in quoted)


def _runtime_quoted(arg: str) -> str:
    """`arg` in double quotes for the C runtime: backslashes doubled before a quote, each inner quote escaped."""
    out, slashes = ['"'], 0
    for ch in arg:
        if ch == "\\":
            slashes += 1
            continue
        out.append("\\" * (2 * slashes + 1) + ch if ch == '"' else "\\" * slashes + ch)
        slashes = 0
    out.append("\\" * (2 * slashes) + '"')
    return "".join(out)


def shell_lines(argvs: Sequence[Sequence[str]], style: str = "posix") -> list[str]:
    """One command per line, in the order given (a plan's resource-creating command first)."""
    return [command_line(argv, style) for argv in argvs]


def process_memory(job: JobSpec) -> int:
    """Bytes the job's whole process needs: the engine's own estimate (push: buffers, slices being decoded,
    interpreter), else the data it holds plus PROCESS_OVERHEAD."""
    return job.process_memory if job.process_memory is not None else job.memory + PROCESS_OVERHEAD


def slurm_memory(memory: int) -> str:
    """An sbatch --mem value (MiB) for a process of `memory` bytes."""
    return f"{ceil_div(memory, 2**20)}M"


def slurm_script(files: PlanFiles, jobs: Sequence[JobSpec], *, cpus: int, workers: int | None = None,
                 job_name: str = "ndex") -> str:
    """One sbatch array script: task i runs `ndex run jobs/job_i.json` in the plan directory."""
    if not jobs:
        raise UsageError("the plan has no jobs: nothing to submit")
    memory = max(j.memory for j in jobs)
    process = max(process_memory(j) for j in jobs)
    limit = f"%{workers}" if workers and workers < len(jobs) else ""
    root = shlex.quote(str(files.root))
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --array=0-{len(jobs) - 1}{limit}",
        f"#SBATCH --mem={slurm_memory(process)}",
        f"#SBATCH --cpus-per-task={max(1, cpus)}",
        f"#SBATCH --output={files.root / 'logs'}/slurm_%A_%a.out",
        f"# {len(jobs)} jobs written by `ndex plan`; each needs ~{memory / 1e6:,.0f} MB of data memory.",
    ]
    if files.create is not None:
        lines.append(f"# Before submitting, create the resources once:  ndex run {shlex.quote(str(files.create))}")
    lines += [
        f"# Progress: ndex status {root}   Re-submitting this script re-runs only unfinished jobs.",
        "set -euo pipefail",
        f"cd {root}",
        'exec ndex run "jobs/job_${SLURM_ARRAY_TASK_ID}.json"',
        "",
    ]
    return "\n".join(lines)
