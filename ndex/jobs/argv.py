"""Turn parsed arguments back into an argv, so each job can be written as the command that runs it.

The planner parses ndpush/ndpull arguments with those commands' own parsers, changes a few values per
job (the z range, the log directory, an output name) and writes the result back as argv. Only
values that differ from the parser's defaults are written, so a job's command reads like one a user
would type. `to_argv(parser, parser.parse_args(to_argv(parser, ns)))` gives the same argv back.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    # argparse has no public list of a parser's actions; `_actions` has been stable since Python 2.7
    return list(parser._actions)


def _words(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _option(action: argparse.Action) -> str:
    """The long spelling of an option (`--threads` rather than `-t`)."""
    return max(action.option_strings, key=len)


def action_argv(action: argparse.Action, value: Any) -> list[str]:
    """The argv words that make `parser` set `action.dest` to `value` (none if it is the default)."""
    if value is None or value == action.default or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return []
    if not action.option_strings:
        return _words(value)
    flag = _option(action)
    if isinstance(action, argparse._CountAction):
        return [flag] * int(value)
    if isinstance(action, argparse._AppendAction):
        return [w for item in value for w in [flag, *_words(item)]]
    if isinstance(action, (argparse._StoreConstAction, argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return [flag] if value == action.const else []
    return [flag, *_words(value)]


def to_argv(parser: argparse.ArgumentParser, args: argparse.Namespace, *, skip: Iterable[str] = ()) -> list[str]:
    """The argv that reproduces `args` under `parser`, leaving out the destinations in `skip`."""
    skipped = set(skip)
    out: list[str] = []
    for action in _actions(parser):
        if action.dest in skipped or action.dest == argparse.SUPPRESS or not hasattr(args, action.dest):
            continue
        out += action_argv(action, getattr(args, action.dest))
    return out
