"""SlackNotifier against the fake Slack: DMs, channels, webhooks, and failures that never raise."""
from __future__ import annotations

import logging
import socket

import pytest
from fixtures_slack import FakeSlack

from ndex.errors import ConfigError
from ndex.notify import NullNotifier, SlackNotifier


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("user, expected", [("alice", "U0ALICE01"), ("@alice", "U0ALICE01"),
                                            ("bobr", "U0BOB0002"), ("Dave Null", "U0DAVE004"),
                                            ("U0BOB0002", "U0BOB0002"), ("bob@example.org", "U0BOB0002")])
def test_dm_reaches_the_user_by_name_display_name_real_name_id_or_email(slack_server: FakeSlack, notifier_for,
                                                                         user, expected, caplog):
    notifier_for(user=user).send("ingest started")

    assert warnings_of(caplog) == []
    [message] = slack_server.messages
    assert message["text"] == "ingest started"
    assert slack_server.dms[message["channel"]] == expected


def test_user_id_skips_the_directory_and_dm_is_opened_once(slack_server: FakeSlack, notifier_for):
    notifier = notifier_for(user="U0ALICE01")
    notifier.send("one")
    notifier.send("two")

    assert [m["text"] for m in slack_server.messages] == ["one", "two"]
    assert slack_server.calls("users.list") == []
    assert len(slack_server.calls("conversations.open")) == 1


def test_name_lookup_follows_users_list_pages_and_skips_deleted_users(slack_server: FakeSlack, notifier_for,
                                                                      caplog):
    notifier_for(user="carol").send("hello")  # carol is deleted; dave is on the last page

    assert slack_server.messages == []
    assert len(slack_server.calls("users.list")) == 2  # 4 members, pages of 2
    assert any("user_not_found" in w and "--slack_usr" in w for w in warnings_of(caplog))


def test_every_web_api_call_carries_the_bearer_token(slack_server: FakeSlack, notifier_for):
    notifier_for(user="alice").send("x")

    assert {r["authorization"] for r in slack_server.requests} == {f"Bearer {slack_server.token}"}


@pytest.mark.parametrize("channel", ["#ingest", "C0GENERAL"])
def test_channel_by_name_or_id(slack_server: FakeSlack, notifier_for, channel, caplog):
    notifier_for(channel=channel).send("done: 42 blocks")

    assert warnings_of(caplog) == []
    assert slack_server.messages == [{"channel": channel, "text": "done: 42 blocks"}]
    assert slack_server.calls("conversations.open") == []


def test_webhook_posts_the_text(slack_server: FakeSlack, notifier_for, caplog):
    notifier_for(webhook_url=slack_server.webhook_url).send("ingest finished")

    assert warnings_of(caplog) == []
    assert slack_server.messages == [{"channel": "webhook", "text": "ingest finished"}]
    assert slack_server.requests[0]["authorization"] is None


def test_unknown_webhook_is_a_warning_without_the_url(slack_server: FakeSlack, notifier_for, caplog):
    bad = slack_server.webhook_url + "-wrong"
    notifier_for(webhook_url=bad).send("x")

    [warning] = warnings_of(caplog)
    assert "no_service" in warning and "SLACK_WEBHOOK_URL" in warning
    assert "webhook-secret" not in caplog.text


def test_bad_token_is_a_warning_naming_the_fix_and_never_the_token(slack_server: FakeSlack, sleeps, caplog):
    notifier = SlackNotifier(token="xoxb-wrong-secret", channel="#ingest", base_url=slack_server.base_url,
                             sleep=sleeps.append)
    with caplog.at_level(logging.DEBUG):
        notifier.send("hello")  # must not raise

    [warning] = warnings_of(caplog)
    assert "invalid_auth" in warning and "--slack_token_file" in warning
    assert "xoxb-wrong-secret" not in caplog.text and "xoxb-wrong-secret" not in repr(notifier)
    assert slack_server.messages == []


@pytest.mark.parametrize("error, hint", [("invalid_auth", "token"), ("channel_not_found", "channel"),
                                         ("not_in_channel", "invite")])
def test_slack_errors_become_warnings(slack_server: FakeSlack, notifier_for, error, hint, caplog):
    slack_server.fail_next(error)
    notifier_for(channel="#ingest").send("x")

    [warning] = warnings_of(caplog)
    assert warning.startswith(f"Slack message not sent: {error}") and hint in warning


def test_unknown_channel_is_a_warning(slack_server: FakeSlack, notifier_for, caplog):
    notifier_for(channel="#nope").send("x")

    assert "channel_not_found" in warnings_of(caplog)[0]


def test_rate_limit_is_retried_once_after_retry_after(slack_server: FakeSlack, notifier_for, sleeps, caplog):
    slack_server.fail_next("ratelimited", retry_after=3)
    notifier_for(channel="C0GENERAL").send("after the pause")

    assert sleeps == [3.0]
    assert warnings_of(caplog) == []
    assert slack_server.messages == [{"channel": "C0GENERAL", "text": "after the pause"}]
    assert len(slack_server.calls("chat.postMessage")) == 2


def test_rate_limit_twice_drops_the_message_with_a_warning(slack_server: FakeSlack, notifier_for, sleeps, caplog):
    slack_server.fail_next("ratelimited", retry_after=2)
    slack_server.fail_next("ratelimited", retry_after=2)
    notifier_for(channel="C0GENERAL").send("x")

    assert sleeps == [2.0]
    assert slack_server.messages == []
    assert "ratelimited" in warnings_of(caplog)[0]


def test_rate_limit_during_dm_lookup_is_retried(slack_server: FakeSlack, notifier_for, sleeps):
    slack_server.fail_next("ratelimited", retry_after=1)  # hits users.list
    notifier_for(user="dave").send("x")

    assert sleeps == [1.0]
    assert slack_server.dms[slack_server.messages[0]["channel"]] == "U0DAVE004"


def test_an_absurd_retry_after_is_not_waited_for(slack_server: FakeSlack, notifier_for, sleeps, caplog):
    slack_server.fail_next("ratelimited", retry_after=3600)
    notifier_for(channel="C0GENERAL").send("x")

    assert sleeps == []
    assert "ratelimited" in warnings_of(caplog)[0]


def test_webhook_rate_limit_is_retried_once(slack_server: FakeSlack, notifier_for, sleeps):
    slack_server.fail_next("rate_limited", status=429, retry_after=1)
    notifier_for(webhook_url=slack_server.webhook_url).send("x")

    assert sleeps == [1.0]
    assert slack_server.messages == [{"channel": "webhook", "text": "x"}]


def test_unreachable_slack_is_a_warning(caplog):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = SlackNotifier(token="xoxb-t", channel="#c", base_url=f"http://127.0.0.1:{port}/api/", timeout=2)
    notifier.send("x")

    assert "Slack message not sent" in warnings_of(caplog)[0]


def test_a_failed_dm_lookup_is_retried_on_the_next_send(slack_server: FakeSlack, notifier_for, caplog):
    notifier = notifier_for(user="alice")
    slack_server.fail_next("invalid_auth")
    notifier.send("lost")
    notifier.send("kept")

    assert [m["text"] for m in slack_server.messages] == ["kept"]


def test_base_url_without_trailing_slash_works(slack_server: FakeSlack, notifier_for):
    notifier_for(channel="#ingest", base_url=slack_server.base_url.rstrip("/")).send("x")

    assert slack_server.messages == [{"channel": "#ingest", "text": "x"}]


def test_notifier_needs_a_recipient_or_a_webhook():
    with pytest.raises(ConfigError, match="recipient"):
        SlackNotifier(token="xoxb-t")
    with pytest.raises(ConfigError, match="SLACK_WEBHOOK_URL"):
        SlackNotifier(user="alice")


def test_null_notifier_does_nothing():
    assert NullNotifier().send("anything") is None
