"""Job log files and Slack notifications for long ingests.

A multi-day `ndpush` writes a timestamped log file (`open_job_log`) and tells a person on
Slack when it starts, fails and ends (`make_notifier(...).send(text)`). Notifications are
a courtesy, never a reason to stop an ingest: `send` logs a warning instead of raising.
Secrets (API token, Slack token, webhook URL) never reach the log file or a warning.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError

from ndex.errors import ConfigError, SinkError, UsageError

log = logging.getLogger(__name__)

# slack_sdk logs request URLs (an incoming webhook URL is a secret) and bodies at DEBUG;
# its records go to this logger, which never passes DEBUG/INFO whatever the CLI configures.
_SDK_LOG = logging.getLogger(f"{__name__}.slack_sdk")
_SDK_LOG.setLevel(logging.WARNING)

REDACTED = "***"
MAX_RETRY_WAIT = 120.0  # seconds; a longer Retry-After would stall the ingest, so the message is dropped
TAIL_CHARS = 3000  # Slack folds long messages; the end of the log is what a person needs
_USER_ID = re.compile(r"[UW][A-Z0-9]{6,}")  # Slack member ids, e.g. U012AB3CD
_TOKEN_HELP = "check --slack_token_file / SLACK_TOKEN"
_HINTS = {
    "invalid_auth": f"the Slack token is not valid: {_TOKEN_HELP}",
    "not_authed": f"no Slack token was sent: {_TOKEN_HELP}",
    "token_revoked": f"the Slack token was revoked: {_TOKEN_HELP}",
    "account_inactive": f"the Slack token belongs to a deleted user or app: {_TOKEN_HELP}",
    "missing_scope": "the Slack app lacks a permission scope: add it and reinstall the app",
    "channel_not_found": "no such Slack channel, or the bot cannot see it: check the channel, invite the bot",
    "not_in_channel": "the bot is not a member of the channel: invite it (/invite @your-bot)",
    "is_archived": "the Slack channel is archived: choose another channel",
    "channel_is_archived": "the Slack channel is archived: choose another channel",
    "user_not_found": "no such Slack user: check --slack_usr (a user name, e-mail or id like U012AB3CD)",
    "users_not_found": "no such Slack user: check --slack_usr (a user name, e-mail or id like U012AB3CD)",
    "ratelimited": "Slack kept rate-limiting after one retry; the message was dropped",
    "invalid_token": "the incoming webhook is not valid: check SLACK_WEBHOOK_URL",
    "no_service": "the incoming webhook is disabled or unknown: check SLACK_WEBHOOK_URL",
}


class Notifier(Protocol):
    """Where progress messages for a person go."""

    def send(self, text: str) -> None:
        """Deliver `text`; never raises (a failure is logged as a warning)."""


class NullNotifier:
    """Sends nothing: the default when Slack is not configured."""

    def send(self, text: str) -> None:
        pass


class _SlackFailure(Exception):
    """One failed Slack call: Slack's error code, HTTP status and Retry-After, if any."""

    def __init__(self, error: str, *, status: int | None = None, retry_after: float | None = None,
                 needed: str | None = None) -> None:
        super().__init__(error)
        self.error, self.status, self.retry_after, self.needed = error, status, retry_after, needed

    def describe(self) -> str:
        hint = _HINTS.get(self.error, f"Slack answered HTTP {self.status}" if self.status else "")
        if self.needed:
            hint = f"{hint} (needed: {self.needed})"
        return f"{self.error} ({hint})" if hint else self.error


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 1.0
    return None


def _api_failure(exc: SlackApiError) -> _SlackFailure:
    response = exc.response
    data = response.data if isinstance(response.data, dict) else {}
    status = response.status_code
    retry = _retry_after(response.headers) if status == 429 else None
    return _SlackFailure(str(data.get("error") or f"http_{status}"), status=status, retry_after=retry,
                         needed=data.get("needed"))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by '***' (longest first, so overlaps cannot leak a part)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class SlackNotifier:
    """Posts to a Slack user (DM), a channel (bot token) or an incoming webhook."""

    def __init__(self, *, token: str | None = None, channel: str | None = None, user: str | None = None,
                 webhook_url: str | None = None, base_url: str | None = None, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if token and not (channel or user):
            raise ConfigError("a Slack token needs a recipient: pass --slack_usr (a user) or a channel")
        if not token and not webhook_url:
            raise ConfigError("Slack needs a bot token (--slack_token_file / SLACK_TOKEN) or SLACK_WEBHOOK_URL")
        self._user, self._channel = user, channel
        self._sleep = sleep
        self._secrets = tuple(s for s in (token, webhook_url) if s)
        self._lock = threading.Lock()
        self._target: str | None = None  # resolved channel/DM id, cached after the first success
        self._web: WebClient | None = None
        self._hook: WebhookClient | None = None
        if token:
            url = (base_url or WebClient.BASE_URL).rstrip("/") + "/"  # slack_sdk joins method names onto it
            # slack_sdk annotates `timeout: int`; it hands it to urllib, which takes seconds as a float
            self._web = WebClient(token=token, base_url=url, timeout=timeout, logger=_SDK_LOG)  # type: ignore[arg-type]
        else:
            assert webhook_url is not None  # checked above: a token or a webhook
            self._hook = WebhookClient(webhook_url, timeout=timeout, logger=_SDK_LOG)  # type: ignore[arg-type]

    def __repr__(self) -> str:  # never the token
        where = f"user={self._user!r}" if self._user else (f"channel={self._channel!r}" if self._channel
                                                          else "webhook")
        return f"SlackNotifier({where})"

    def send(self, text: str) -> None:
        try:
            self._deliver(text)
        except _SlackFailure as failure:
            log.warning("Slack message not sent: %s", failure.describe())
        except Exception as exc:  # a notification must never stop an ingest
            log.warning("Slack message not sent: %s", scrub(f"{type(exc).__name__}: {exc}", self._secrets))

    @property
    def _api(self) -> WebClient:
        if self._web is None:  # unreachable: webhook mode never resolves users or channels
            raise _SlackFailure("not_authed")
        return self._web

    def _deliver(self, text: str) -> None:
        if self._hook is not None:
            self._retrying(self._post_webhook, hook=self._hook, text=text)
            return
        target = self._resolve_target()
        self._retrying(self._api.chat_postMessage, channel=target, text=text)

    def _retrying(self, call: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        """Run one Slack call; after a 429 wait its Retry-After and try exactly once more."""
        try:
            return self._once(call, **kwargs)
        except _SlackFailure as failure:
            if failure.retry_after is None or failure.retry_after > MAX_RETRY_WAIT:
                raise
            log.info("Slack rate limit: retrying in %.1f s", failure.retry_after)
            self._sleep(failure.retry_after)
        return self._once(call, **kwargs)

    @staticmethod
    def _once(call: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        try:
            result = call(**kwargs)
        except SlackApiError as exc:
            raise _api_failure(exc) from None
        return getattr(result, "data", result)  # a SlackResponse, or the webhook's dict

    @staticmethod
    def _post_webhook(*, hook: WebhookClient, text: str) -> dict[str, Any]:
        response = hook.send(text=text)
        if response.status_code == 200:
            return {"ok": True}
        retry = _retry_after(response.headers) if response.status_code == 429 else None
        error = (response.body or "").strip() or f"http_{response.status_code}"
        raise _SlackFailure("ratelimited" if response.status_code == 429 else error,
                            status=response.status_code, retry_after=retry)

    def _resolve_target(self) -> str:
        with self._lock:
            if self._target is None:
                self._target = self._channel or self._open_dm(self._user or "")
            return self._target

    def _open_dm(self, user: str) -> str:
        opened = self._retrying(self._api.conversations_open, users=self._user_id(user))
        return opened["channel"]["id"]

    def _user_id(self, user: str) -> str:
        name = user.strip().lstrip("@")
        if _USER_ID.fullmatch(name):
            return name
        if "@" in name:
            return self._retrying(self._api.users_lookupByEmail, email=name)["user"]["id"]
        for member in self._members():
            profile = member.get("profile") or {}
            if name in (member.get("name"), profile.get("display_name"), member.get("real_name")):
                return member["id"]
        raise _SlackFailure("user_not_found")

    def _members(self) -> Iterable[dict[str, Any]]:
        cursor = None
        while True:
            page = self._retrying(self._api.users_list, limit=200, cursor=cursor)
            yield from (m for m in page.get("members", []) if not m.get("deleted"))
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return


def read_token_file(path: str | os.PathLike) -> str:
    """The token on the first line of `path` (ndex 1.x --slack_token_file)."""
    file = Path(path).expanduser()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"Slack token file {file} does not exist: fix --slack_token_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"cannot read Slack token file {file} ({reason}): fix --slack_token_file") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise ConfigError(f"Slack token file {file} is empty: put the bot token (xoxb-...) on its first line")
    return token


def make_notifier(*, token_file: str | None = None, user: str | None = None, channel: str | None = None,
                  webhook_url: str | None = None, base_url: str | None = None,
                  environ: Mapping[str, str] | None = None) -> Notifier:
    """The notifier the flags and environment ask for; NullNotifier when Slack is not configured.

    A token alone in SLACK_TOKEN (no recipient) is ignored, as in ndex 1.x; an explicit
    token file without a recipient, or a recipient without a token, is a ConfigError.
    """
    env = os.environ if environ is None else environ
    if user and channel:
        raise ConfigError("give a Slack user (--slack_usr) or a channel, not both")
    token = read_token_file(token_file) if token_file else (env.get("SLACK_TOKEN") or "").strip()
    hook = webhook_url or (env.get("SLACK_WEBHOOK_URL") or "").strip()
    recipient = user or channel
    if recipient and token:
        return SlackNotifier(token=token, user=user, channel=channel, base_url=base_url)
    if recipient:
        raise ConfigError(f"Slack recipient {recipient!r} given but no bot token: pass --slack_token_file "
                          "or set SLACK_TOKEN (an incoming webhook cannot send direct messages)")
    if token_file:
        raise ConfigError("--slack_token_file given but no Slack recipient: add --slack_usr USER")
    if hook:
        return SlackNotifier(webhook_url=hook)
    return NullNotifier()


class _RedactSecrets(logging.Filter):
    """Rewrites a record so that no secret survives: message, args, traceback and stack text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format call must not raise into the caller from a filter
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = scrub(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.secrets)
        return True


class _JobLogHandler(logging.FileHandler):
    """A file handler that detaches itself from the 'ndex' logger when closed."""

    def __init__(self, path: Path, logger: logging.Logger) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self._logger = logger
        self._previous_level: int | None = None

    def attach(self) -> None:
        if self._logger.getEffectiveLevel() > logging.INFO:  # else INFO records never reach the file
            self._previous_level = self._logger.level
            self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self)

    def close(self) -> None:
        self._logger.removeHandler(self)
        if self._previous_level is not None:
            self._logger.setLevel(self._previous_level)
            self._previous_level = None
        super().close()


def open_job_log(path: str | os.PathLike, *, secrets: Iterable[str] = ()) -> logging.Handler:
    """Append INFO and up of every 'ndex' logger to `path`, timestamped, secrets redacted.

    Close the returned handler to detach it again.
    """
    file = Path(path).expanduser()
    logger = logging.getLogger("ndex")
    try:
        handler = _JobLogHandler(file, logger)
    except OSError as exc:
        raise SinkError(f"cannot open job log {file} ({exc.strerror}): choose a writable log path") from None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
                                           datefmt="%Y-%m-%d %H:%M:%S"))
    handler.addFilter(_RedactSecrets(secrets))
    handler.attach()
    return handler


def log_tail(path: str | os.PathLike, lines: int = 20, *, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a log file, reading at most `max_bytes` from its end ('' if absent)."""
    try:
        with open(path, "rb") as fh:
            data = _read_tail(fh, lines, max_bytes)
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""


def _read_tail(fh: Any, lines: int, max_bytes: int, block: int = 8192) -> bytes:
    """Read backwards block by block until `lines` complete lines or `max_bytes` are in hand."""
    end = fh.seek(0, os.SEEK_END)
    data = b""
    position = end
    while position > 0 and len(data) < max_bytes and data.rstrip(b"\n").count(b"\n") < lines:
        step = min(block, position, max_bytes - len(data))
        position -= step
        fh.seek(position)
        data = fh.read(step) + data
    return data


def job_log_name(collection: str, experiment: str, channel: str, z_range: tuple[int, int] | None = None) -> str:
    """ndex 1.x's `ingest_log_<coll>_<exp>_<chan>.txt`; a z range adds `_<zstart>_<zstop>` so that
    parallel jobs of one channel (ndex plan) do not interleave in one file."""
    parts = [collection, experiment, channel]
    if any(not p or "/" in p or "\\" in p for p in parts):
        raise UsageError(f"collection, experiment and channel names must be non-empty without path "
                         f"separators, got {parts!r}")
    if z_range is not None:
        parts += [str(int(z_range[0])), str(int(z_range[1]))]
    return "_".join(["ingest_log", *parts]) + ".txt"


def slack_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def report_message(title: str, summary_lines: list[str], tail: str | None = None) -> str:
    """A Slack message: bold title, one line per summary item, the log tail in a code block."""
    parts = [f"*{slack_escape(title)}*", *(slack_escape(line) for line in summary_lines)]
    if tail and tail.strip():
        clipped = tail if len(tail) <= TAIL_CHARS else "…" + tail[-TAIL_CHARS:]
        # a ``` inside the tail would close the block early
        parts.append("```\n" + slack_escape(clipped.replace("```", "'''")).rstrip("\n") + "\n```")
    return "\n".join(parts)
