"""Help and parsing of every command: defaults shown, one group per topic, templates quoted, "did you
mean" for a mistyped flag, and output into a closed pipe ending quietly."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ndex.cli import expand_stacks, pull, push
from ndex.cli.common import ArgumentParser
from ndex.cli.main import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent


def command_parser(name: str) -> argparse.ArgumentParser:
    parser = build_parser(name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def every_parser() -> dict[str, argparse.ArgumentParser]:
    """Every command and sub-command of `ndex`, and the standalone programs."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        found[prefix] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(f"{prefix} {name}", child)

    for name in SUBCOMMANDS:
        walk(f"ndex {name}", command_parser(name))
    for prog, module in (("ndpull", pull), ("ndpush", push), ("expand_stacks", expand_stacks)):
        parser = ArgumentParser(prog=prog)
        module.configure(parser)
        found[prog] = parser
    return found


PARSERS = every_parser()


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_flag_with_a_default_shows_it(name):
    parser = PARSERS[name]
    formatter = parser._get_formatter()
    for action in parser._actions:
        default = action.default
        if not action.option_strings or default is None or default is False or default in ("", argparse.SUPPRESS):
            continue
        text = formatter._get_help_string(action) or ""
        assert "default" in text.lower(), f"{name} {action.option_strings[0]}: {text!r}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_one_group_per_topic(name):
    titles = [g.title for g in PARSERS[name]._action_groups if g._group_actions]
    assert len(titles) == len(set(titles)), titles
    for group in PARSERS[name]._action_groups:
        flags = {f for a in group._group_actions for f in a.option_strings}
        if "--boss_config_file" in flags:
            assert group.title == "connection"


def templates_in(text: str) -> list[str]:
    """Every whitespace-separated word that holds an ndex template placeholder (<p:4>, <>, <ch>)."""
    return [w for w in text.split() if re.search(r"<(p:\d+|ch|)>", w)]


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_templates_in_help_are_quoted_for_the_shell(name):
    help_text = PARSERS[name].format_help()
    unquoted = [w for w in templates_in(help_text) if not re.search(r"'[^' ]*<(p:\d+|ch|)>", w)]
    assert not unquoted, unquoted


def test_templates_in_the_readme_commands_are_quoted():
    commands = [line for line in (ROOT / "README.md").read_text().splitlines()
                if re.match(r"\s*(ndpush|ndpull|ndex|expand_stacks|python)\b", line)]
    unquoted = [w for line in commands for w in templates_in(line) if "'" not in w and '"' not in w]
    assert not unquoted, unquoted


@pytest.mark.parametrize("argv, suggestion", [
    (["push", "--x_extnt", "0", "4"], "--x_extent"),
    (["pull", "--colection", "c"], "--collection"),
    (["serve", "--prot", "8080"], "--port"),
    (["token", "list", "--dta", "d"], "--data"),
])
def test_a_mistyped_flag_gets_a_did_you_mean(argv, suggestion):
    done = subprocess.run([sys.executable, "-m", "ndex.cli.main", *argv], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(f"(did you mean {suggestion}?)")


def test_standalone_programs_suggest_too(capsys):
    with pytest.raises(SystemExit) as info:
        push.main(["--base_filname", "x"])
    assert info.value.code == 2 and "(did you mean --base_filename?)" in capsys.readouterr().err


def test_verify_help_speaks_of_verifying():
    help_text = PARSERS["ndex verify"].format_help()
    assert "Verify an ingest" in help_text and "slices to verify" in help_text
    assert not re.search(r"slices to ingest|ingest a zero slice|resolution to write", help_text)


def test_expand_stacks_is_named_with_its_input_flag_wherever_an_error_suggests_it():
    for path in (ROOT / "ndex" / "sources").glob("*.py"):
        for mention in re.findall(r"expand_stacks[^\"']*", path.read_text()):
            assert mention.startswith("expand_stacks --input"), (path.name, mention)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    data = str(tmp_path / "data")
    assert subprocess.run([sys.executable, "-m", "ndex.cli.main", "token", "create", "--data", data,
                           "--user", "ann"], capture_output=True).returncode == 0
    reader, writer = os.pipe()
    os.close(reader)  # as `ndex token list | head -1` once head has exited
    try:
        done = subprocess.run([sys.executable, "-m", "ndex.cli.main", "token", "list", "--data", data],
                              stdout=writer, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(writer)
    assert done.stderr == "" and done.returncode == 141  # 128 + SIGPIPE, as a C tool killed by it reports
