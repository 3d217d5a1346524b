"""Fixtures of the push tests (helpers live in push_helpers.py): the real client against the server
app in-process (`boss` is the server side, `client` a BossClient for it)."""
from __future__ import annotations

import pytest
from inprocess_boss import Boss

from ndex.client import BossClient


@pytest.fixture
def boss(inprocess_boss: Boss) -> Boss:
    return inprocess_boss


@pytest.fixture
def client(boss: Boss) -> BossClient:
    return boss.client(threads=4)
