"""Fixtures of the push tests (helpers live in push_helpers.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ has no __init__.py: put it (shared fixtures) and this directory (fake_boss, push_helpers) on sys.path
HERE = Path(__file__).resolve().parent
for path in (str(HERE.parent), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from fake_boss import FakeBoss  # noqa: E402


@pytest.fixture
def boss() -> FakeBoss:
    return FakeBoss()


from fixtures_render import render_server  # noqa: E402,F401 - shared fixtures
from fixtures_server import make_channel, ndex_server, server_app  # noqa: E402,F401
from fixtures_slack import slack_server  # noqa: E402,F401


