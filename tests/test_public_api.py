"""`ndex.__all__` is the public API: `dir(ndex)` lists it, every name in it resolves, and every name the
README and the examples import from `ndex` is in it."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import ndex

ROOT = Path(__file__).resolve().parent.parent


def test_dir_lists_the_public_api():
    assert set(ndex.__all__) <= set(dir(ndex))
    assert {"pull", "push", "PullSpec", "PushSpec", "BossClient", "NdexError"} <= set(dir(ndex))


def test_every_public_name_resolves_to_what_its_module_defines():
    for name in ndex.__all__:
        value = getattr(ndex, name)
        if name == "__version__":
            continue
        module = importlib.import_module(ndex._LAZY[name])
        assert getattr(module, name) is value
        assert getattr(value, "__module__", "ndex").startswith("ndex.")  # ours, not a re-exported foreign name


def test_names_the_docs_import_from_ndex_are_public():
    texts = [(ROOT / "README.md").read_text(), *(p.read_text() for p in (ROOT / "examples").glob("*.py"))]
    groups = [a or b for text in texts for a, b in re.findall(r"from ndex import (?:\(([^)]*)\)|([^\n]+))", text)]
    imported = {name.split("#")[0].strip() for group in groups for name in group.split(",")} - {""}
    assert imported and imported <= set(ndex.__all__), imported - set(ndex.__all__)


def test_star_import_gives_exactly_the_api():
    done = subprocess.run([sys.executable, "-c", "from ndex import *; import ndex; "
                           "missing = [n for n in ndex.__all__ if n not in globals()]; print(missing)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error():
    try:
        ndex.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("ndex.no_such_thing should not exist")
