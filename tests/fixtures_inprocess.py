"""pytest fixtures for the in-process server (a plugin of tests/conftest.py; see inprocess_boss.py).

* `inprocess_boss`: a fresh server app of its own (SQLite and volumes under the test's tmp_path),
  reached by real `BossClient`s through a requests adapter: no socket, no subprocess, faults on demand.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from inprocess_boss import Boss, started


@pytest.fixture
def inprocess_boss(tmp_path_factory) -> Iterator[Boss]:
    yield from started(tmp_path_factory.mktemp("inprocess-boss"))


@pytest.fixture
def client_sleeps(monkeypatch) -> list[float]:
    """Every BossClient built during the test (by the CLI too) records its retry pauses here instead of
    sleeping them: the client's own `sleep` parameter, given as the default."""
    from ndex.client import BossClient

    pauses: list[float] = []
    monkeypatch.setitem(BossClient.__init__.__kwdefaults__, "sleep", pauses.append)
    return pauses
