"""make_notifier: what flags and environment turn on, and one-line errors for half a configuration."""
from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_slack import FakeSlack

from ndex.errors import ConfigError
from ndex.notify import NullNotifier, SlackNotifier, make_notifier


@pytest.fixture
def token_file(tmp_path: Path, slack_server: FakeSlack) -> Path:
    path = tmp_path / "slack_token"
    path.write_text(slack_server.token + "\n# ignored second line\n")
    return path


def test_nothing_configured_is_the_null_notifier():
    assert isinstance(make_notifier(environ={}), NullNotifier)


def test_env_token_without_recipient_is_ignored_as_in_ndex_1():
    assert isinstance(make_notifier(environ={"SLACK_TOKEN": "xoxb-elsewhere"}), NullNotifier)


def test_token_file_and_user_send_a_dm(slack_server: FakeSlack, token_file: Path):
    notifier = make_notifier(token_file=str(token_file), user="alice", base_url=slack_server.base_url,
                             environ={})
    notifier.send("hi")

    assert isinstance(notifier, SlackNotifier)
    assert slack_server.dms[slack_server.messages[0]["channel"]] == "U0ALICE01"


def test_slack_token_env_and_channel(slack_server: FakeSlack):
    notifier = make_notifier(channel="#ingest", base_url=slack_server.base_url,
                             environ={"SLACK_TOKEN": slack_server.token})
    notifier.send("hi")

    assert slack_server.messages == [{"channel": "#ingest", "text": "hi"}]


def test_token_file_wins_over_env(slack_server: FakeSlack, token_file: Path):
    make_notifier(token_file=str(token_file), channel="C0GENERAL", base_url=slack_server.base_url,
                  environ={"SLACK_TOKEN": "xoxb-stale"}).send("hi")

    assert slack_server.messages and slack_server.requests[0]["authorization"] == f"Bearer {slack_server.token}"


@pytest.mark.parametrize("environ, kwargs", [({"SLACK_WEBHOOK_URL": "{hook}"}, {}),
                                             ({}, {"webhook_url": "{hook}"})])
def test_webhook_from_env_or_argument(slack_server: FakeSlack, environ, kwargs):
    fill = {k: v.format(hook=slack_server.webhook_url) for k, v in environ.items()}
    make_notifier(environ=fill, **{k: v.format(hook=slack_server.webhook_url) for k, v in kwargs.items()}).send("x")

    assert slack_server.messages == [{"channel": "webhook", "text": "x"}]


def test_missing_token_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"does not exist: fix --slack_token_file") as err:
        make_notifier(token_file=str(tmp_path / "nope"), user="alice", environ={})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", ["", "\n", "   \nxoxb-on-second-line\n"])
def test_empty_token_file(tmp_path: Path, content: str):
    path = tmp_path / "slack_token"
    path.write_text(content)
    with pytest.raises(ConfigError, match="is empty: put the bot token"):
        make_notifier(token_file=str(path), user="alice", environ={})


def test_unreadable_token_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read Slack token file"):
        make_notifier(token_file=str(tmp_path), user="alice", environ={})  # a directory


def test_token_file_without_recipient(token_file: Path):
    with pytest.raises(ConfigError, match="--slack_usr"):
        make_notifier(token_file=str(token_file), environ={})


@pytest.mark.parametrize("kwargs", [{"user": "alice"}, {"channel": "#ingest"}])
def test_recipient_without_token(kwargs):
    with pytest.raises(ConfigError, match="no bot token: pass --slack_token_file or set SLACK_TOKEN"):
        make_notifier(environ={}, **kwargs)


def test_recipient_with_only_a_webhook_cannot_dm():
    with pytest.raises(ConfigError, match="webhook cannot send direct messages"):
        make_notifier(user="alice", environ={"SLACK_WEBHOOK_URL": "http://127.0.0.1:1/hook"})


def test_user_and_channel_together(token_file: Path):
    with pytest.raises(ConfigError, match="not both"):
        make_notifier(token_file=str(token_file), user="alice", channel="#ingest", environ={})


def test_errors_never_show_the_token(tmp_path: Path, token_file: Path):
    with pytest.raises(ConfigError) as err:
        make_notifier(token_file=str(token_file), environ={})
    assert token_file.read_text().splitlines()[0] not in str(err.value)
