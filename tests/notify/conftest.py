"""Fixtures of the notify tests: the fake Slack server and a quiet notifier that records its pauses."""
from __future__ import annotations

import pytest
from fixtures_slack import FakeSlack

from ndex.notify import SlackNotifier


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
