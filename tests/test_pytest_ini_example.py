"""pytest.ini.example replaces the suite's settings as a whole when copied, so it must carry every one of
them (a copy without `pythonpath` could not even import the fixtures)."""
from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def suite_section() -> str:
    """pyproject.toml's [tool.pytest.ini_options] as text (tomllib needs Python 3.11)."""
    return (ROOT / "pyproject.toml").read_text().split("[tool.pytest.ini_options]", 1)[1].split("\n[", 1)[0]


def suite_keys() -> set[str]:
    return set(re.findall(r"^(\w+)\s*=", suite_section(), flags=re.MULTILINE))


def suite_markers() -> list[str]:
    return re.findall(r'^\s*"([^"]+)",?$', suite_section().split("markers", 1)[1].split("]", 1)[0],
                      flags=re.MULTILINE)


def lines(text: str) -> list[str]:
    return [v.strip() for v in text.splitlines() if v.strip()]


def test_the_example_repeats_every_setting_of_pyproject(pytestconfig):
    example = configparser.ConfigParser()
    example.read(ROOT / "pytest.ini.example")
    local = example["pytest"]
    assert suite_keys() <= set(local), f"missing from pytest.ini.example: {sorted(suite_keys() - set(local))}"
    assert local["testpaths"].split() == pytestconfig.getini("testpaths")
    assert [ROOT / p for p in local["pythonpath"].split()] == pytestconfig.getini("pythonpath")
    assert lines(local["markers"]) == suite_markers()
    assert lines(local["filterwarnings"]) == pytestconfig.getini("filterwarnings")
    assert set(local["addopts"].split()) >= set(pytestconfig.getini("addopts"))
