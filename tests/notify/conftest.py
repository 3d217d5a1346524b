"""Fixtures of the notify tests: the fake Slack server and a quiet notifier that records its pauses."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/ has no __init__.py; put it on sys.path so this directory also runs on its own
TESTS_DIR = str(Path(__file__).resolve().parents[1])
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
import fixtures_slack  # noqa: E402
from fixtures_slack import FakeSlack  # noqa: E402

from ndex.notify import SlackNotifier  # noqa: E402

slack_server = fixtures_slack.slack_server  # registers the fixture for this directory


@pytest.fixture
def sleeps() -> list[float]:
    """Every pause a notifier asked for, instead of sleeping it."""
    return []


@pytest.fixture
def notifier_for(slack_server: FakeSlack, sleeps: list[float]):
    """Build a SlackNotifier against the fake server (token mode unless a webhook is given)."""
    def build(**kwargs) -> SlackNotifier:
        if "webhook_url" not in kwargs:
            kwargs.setdefault("token", slack_server.token)
            kwargs.setdefault("base_url", slack_server.base_url)
        return SlackNotifier(sleep=sleeps.append, timeout=5.0, **kwargs)
    return build
