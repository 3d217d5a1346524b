"""What every ndex command shares: connection flags, logging, the tqdm bar, error -> exit code."""
from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ndex.errors import (
    AuthError,
    BadInput,
    NdexError,
    QuotaExceeded,
    RemoteError,
    ResourceNotFound,
    SinkError,
    SourceError,
    TransferFailed,
    TransportError,
    UsageError,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REMOTE, EXIT_LOCAL_IO, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what `yes | head` reports for the writer


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every flag's default in its help (unless the help speaks of it, or there is none); descriptions and
    epilogs (examples) as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        nothing = default is None or default is False or default is argparse.SUPPRESS or default == ""
        if not action.option_strings or nothing or "default" in text.lower():
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with defaults in the help and "did you mean --x?" for a mistyped flag."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kw)

    def error(self, message: str) -> None:  # type: ignore[override]
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            message += did_you_mean(message[len(prefix):].split(), self.known_flags())
        super().error(message)

    def known_flags(self) -> list[str]:
        """This parser's flags and those of its subcommands (only the chosen one is configured)."""
        flags = [f for a in self._actions if a.help is not argparse.SUPPRESS for f in a.option_strings]
        for action in self._actions:
            for child in getattr(action, "choices", None) or ():
                if isinstance(action, argparse._SubParsersAction):
                    flags += action.choices[child].known_flags()
        return flags


class RenamedFlag(argparse.Action):
    """The old spelling of a renamed flag: hidden from the help, sets what the new flag sets, and says
    once on stderr which spelling to use (a script written for the old one keeps working)."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, nargs: Any = None, const: Any = None,
                 **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=nargs, const=const, default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kw)
        self.new = new
        self.warned = False

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if not self.warned:
            print(f"warning: {option_string} is deprecated and will go: spell it {self.new}", file=sys.stderr)
            self.warned = True
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_renamed_flag(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept `old` as a deprecated spelling of the flag `new`, which the parser already has."""
    target = next(a for a in parser._actions if new in a.option_strings)
    like: dict[str, Any] = {"nargs": 0, "const": target.const} if target.nargs == 0 else \
        {"nargs": target.nargs, "type": target.type, "metavar": target.metavar}
    parser.add_argument(old, dest=target.dest, action=RenamedFlag, new=new, **like)


def did_you_mean(unknown: list[str], known: list[str]) -> str:
    """' (did you mean --x_extent?)' for the first unknown flag that is close to a known one, else ''."""
    for word in unknown:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                return f" (did you mean {close[0]}?)"
    return ""


def until_pipe_closed(body: Callable[[], int]) -> int:
    """`body()`'s exit code, or EXIT_PIPE_CLOSED without a traceback if stdout's reader went away."""
    try:
        code = body()
        sys.stdout.flush()  # here, not at interpreter exit, where a closed pipe prints a traceback
        return code
    except BrokenPipeError:
        return pipe_closed()


def pipe_closed() -> int:
    """stdout's reader went away (`ndex ... | head`): end quietly, no traceback, no second error when
    the interpreter flushes stdout on exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE_CLOSED


def add_connection_flags(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--config_file/--token/--url; the group is returned for a command's own connection flags."""
    group = parser.add_argument_group("connection")
    group.add_argument("--config_file", help="intern-style INI file with [Default] protocol, host, token "
                       "(default: ./neurodata.cfg, then ~/.intern/intern.cfg)")
    group.add_argument("--token", help="API token (overrides NDEX_TOKEN, INTERN_TOKEN, BOSS_TOKEN and config files)")
    group.add_argument("--url", help="server URL, e.g. http://127.0.0.1:8080 (overrides NDEX_URL and config files)")
    return group


def add_channel_flags(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """--collection/--experiment/--channel in a group of their own; the group is returned for more."""
    group = parser.add_argument_group(title)
    group.add_argument("--collection", help="collection name")
    group.add_argument("--experiment", help="experiment name")
    group.add_argument("--channel", help="channel name")
    return group


def add_logging_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar, only warnings and errors")


class _ConsoleHandler(logging.StreamHandler):
    """The one stderr handler of a command, with its own level: a job log file that lowers the 'ndex'
    logger to INFO for itself must not make -q (or the default) chatty on the console. Records of the
    CLI modules themselves are meant for job log files: the CLI prints what a person needs to see."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("ndex.cli") and super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:  # through tqdm: a line written under a progress bar would be torn by its next redraw
            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def standalone_main(prog: str, description: str, configure: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int], argv: list[str] | None) -> int:
    """`ndpull`/`ndpush`/...: the subcommand's own parser as a program of its own."""

    def body() -> int:
        parser = ArgumentParser(prog=prog, description=description)
        configure(parser)
        args = parser.parse_args(argv)
        if getattr(args, "threads", 1) < 1:
            parser.error("--threads must be at least 1")
        return run(args)

    return until_pipe_closed(body)


def parse_size(text: str) -> int:
    """'8GB', '512MiB', '1e9' -> bytes."""
    units = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
             "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 10**3, "m": 10**6, "g": 10**9}
    raw = text.strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):]
    try:
        return int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 8GB or 512MiB") from None


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ConsoleHandler)]:
        root.removeHandler(old)
    handler = _ConsoleHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.WARNING, level))


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, (UsageError, BadInput)):
        return EXIT_USAGE
    if isinstance(exc, (RemoteError, TransportError)):
        return EXIT_REMOTE
    if isinstance(exc, (SinkError, SourceError, OSError)):
        return EXIT_LOCAL_IO
    return EXIT_FAILED


def hint_for(exc: BaseException) -> str:
    """The 'what to do' half of a one-line error."""
    if isinstance(exc, AuthError):
        return "check the token (--token, NDEX_TOKEN or the config file) and its permissions on this resource"
    if isinstance(exc, ResourceNotFound):
        return "check the collection/experiment/channel names (`ndex info` lists them)"
    if isinstance(exc, TransportError):
        return "check --url and your network, then re-run the same command (a pull or push continues where it stopped)"
    if isinstance(exc, TransferFailed):
        return "re-run the same command to retry only the failed blocks"
    return ""


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    hint = hint_for(exc)
    if text.startswith("error: "):
        text = text[len("error: "):]
    return f"error: {text}" + (f" ({hint})" if hint and "check" not in text.lower() else "")


def ended_early(report: Any) -> int | None:
    """The exit code after one line if the run was ended by an error that a re-run as is would meet
    again, the spent usage quota (3) or a bad input file (2): each block in flight or in the slab
    failed with the same words, so they are not listed. None otherwise."""
    if not isinstance(report.ended_by, (QuotaExceeded, BadInput)):
        return None
    say_error(one_line(report.ended_by))
    return exit_code_for(report.ended_by)


def run_guarded(body: Callable[[], int]) -> int:
    """Run a command body; NdexError and OSError become one line on stderr and an exit code."""
    try:
        return body()
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to continue where it stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return pipe_closed()
    except (NdexError, OSError) as exc:
        logging.getLogger("ndex").debug("command failed", exc_info=True)
        say_error(one_line(exc))
        return exit_code_for(exc)


def say_error(line: str) -> None:
    """The command's one error line: on stderr, and logged (not on the console again) so that a job log
    file, and `ndex run`'s record of the job (shown by `ndex status`), hold it too."""
    print(line, file=sys.stderr)
    logger = logging.getLogger("ndex.cli")
    if logger.hasHandlers():  # else logging's last resort would print the line a second time
        logger.error("%s", line)


class TqdmProgress:
    """Progress protocol drawn as a tqdm bar of blocks with MB and MB/s."""

    def __init__(self, description: str, enabled: bool = True) -> None:
        self.description = description
        self.enabled = enabled
        self.bar = None
        self.nbytes = 0
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def start(self, total_blocks: int, total_bytes: int, *, done_blocks: int = 0, done_bytes: int = 0) -> None:
        from tqdm import tqdm

        self.t0 = time.monotonic()
        self.nbytes = 0
        self.bar = tqdm(total=total_blocks, initial=done_blocks, desc=self.description, unit="block",
                        disable=not self.enabled, dynamic_ncols=True, file=sys.stderr)

    def advance(self, blocks: int = 1, nbytes: int = 0) -> None:
        with self.lock:
            self.nbytes += nbytes
            if self.bar is not None:
                rate = self.nbytes / max(time.monotonic() - self.t0, 1e-6)
                self.bar.set_postfix_str(f"{self.nbytes / 1e6:,.0f} MB, {rate / 1e6:,.0f} MB/s", refresh=False)
                self.bar.update(blocks)

    def retry(self, what: str, error: BaseException) -> None:
        pass  # the client logs every retry at WARNING, which the console handler draws above the bar

    def note(self, message: str) -> None:
        if self.bar is not None and self.enabled:
            self.bar.write(message, file=sys.stderr)
        elif self.enabled:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
