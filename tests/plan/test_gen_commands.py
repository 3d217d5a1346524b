"""scripts/gen_commands.py: settings at the top and flags both reach `ndex plan`, flags winning."""
from __future__ import annotations

import configparser
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gen_commands.py"


@pytest.fixture
def gen():
    spec = importlib.util.spec_from_file_location("gen_commands", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_become_flags(gen):
    assert gen.settings_argv({"a": None, "b": "", "c": False, "d": True, "x_extent": (0, 10), "n": 3}) == [
        "--d", "--x_extent", "0", "10", "--n", "3"]


def test_edited_settings_and_flags_make_the_plan(gen, tiff_volume, capsys, monkeypatch):
    folder, _ = tiff_volume
    monkeypatch.chdir(folder.parent)
    gen.SETTINGS.update(collection="c1", experiment="e1", channel="ch", base_path="slices",
                        base_filename="img_<p:4>", x_extent=(0, 600), y_extent=(0, 300), z_extent=(0, 40),
                        datatype="uint16", workers=2)
    assert gen.main(["--workers", "3", "--z_range", "8", "40"]) == 0
    argvs = [shlex.split(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert argvs[0][0] == "ndpush" and "--create_resources" in argvs[0]  # the setting's default: create first
    jobs = argvs[1:]
    assert len(jobs) == 3  # the flag's 3 workers, not the setting's 2
    assert [a[a.index("--z_range") + 1:a.index("--z_range") + 3] for a in jobs] == [["8", "16"], ["16", "32"],
                                                                                    ["32", "40"]]
    assert all(a[a.index("--collection") + 1] == "c1" for a in argvs)
    assert all("--max_memory" in a for a in jobs)  # the memory_per_worker setting reached the planner


def test_run_local_works_without_naming_a_format(gen, tiff_volume, capsys, monkeypatch):
    folder, _ = tiff_volume
    monkeypatch.chdir(folder.parent)
    gen.SETTINGS.update(collection="c1", experiment="e1", channel="ch", base_path="slices",
                        base_filename="img_<p:4>", x_extent=(0, 600), y_extent=(0, 300), z_extent=(0, 40),
                        datatype="uint16", workers=2, create_resources=False)
    captured = []
    monkeypatch.setattr("ndex.cli.main.main", lambda argv: captured.append(argv) or 0)
    assert gen.main(["--run", "local"]) == 0
    assert "--format" not in captured[0] and "--run" in captured[0]


def test_pytest_ini_example_names_the_file_that_holds_the_suites_settings():
    root = SCRIPT.parents[1]
    text = (root / "pytest.ini.example").read_text()
    assert "pyproject.toml" in text and "setup.cfg" not in text
    assert "[tool.pytest.ini_options]" in (root / "pyproject.toml").read_text()
    ours = configparser.ConfigParser()
    ours.read_string(text)
    suite = re.search(r"filterwarnings = \[(.*?)\]", (root / "pyproject.toml").read_text(), re.S).group(1)
    listed = [line.strip() for line in ours["pytest"]["filterwarnings"].splitlines() if line.strip()]
    assert listed == re.findall(r'"([^"]+)"', suite)  # a local copy must not drop the suite's warning rules
