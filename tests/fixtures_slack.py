"""A fake Slack on 127.0.0.1: the Web API methods ndex calls, plus one incoming webhook.

Answers with Slack's real shapes (`{"ok": true, ...}`, `{"ok": false, "error": ...}`, HTTP 429
with Retry-After), checks `Authorization: Bearer <token>`, records every request and every
delivered message. Use it from a conftest: `from fixtures_slack import slack_server`.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

TOKEN = "xoxb-fake-0000-slack-secret"
WEBHOOK_PATH = "/services/T0FAKE/B0FAKE/webhook-secret-0000"
USERS = [  # members as users.list returns them (subset of fields)
    {"id": "U0ALICE01", "name": "alice", "real_name": "Alice Liddell", "deleted": False,
     "profile": {"display_name": "alice", "email": "alice@example.org"}},
    {"id": "U0BOB0002", "name": "bob", "real_name": "Bob Ross", "deleted": False,
     "profile": {"display_name": "bobr", "email": "bob@example.org"}},
    {"id": "U0GONE003", "name": "carol", "real_name": "Carol Gone", "deleted": True,
     "profile": {"display_name": "carol", "email": "carol@example.org"}},
    {"id": "U0DAVE004", "name": "dave", "real_name": "Dave Null", "deleted": False,
     "profile": {"display_name": "", "email": "dave@example.org"}},
]
CHANNELS = {"C0GENERAL": "general", "C0INGEST1": "ingest"}


@dataclass
class Failure:
    error: str
    status: int = 200
    retry_after: int | None = None


@dataclass
class FakeSlack:
    """State of the fake: what it knows, what it received, what it will refuse next."""

    base_url: str = ""
    webhook_url: str = ""
    token: str = TOKEN
    page_size: int = 2  # small, so that users.list pagination is exercised
    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    dms: dict[str, str] = field(default_factory=dict)  # DM channel id -> user id
    _failures: list[Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, error: str, *, status: int | None = None, retry_after: int | None = None) -> None:
        """The next request (any endpoint) fails with Slack error `error` (e.g. 'invalid_auth');
        error 'ratelimited' answers HTTP 429 with Retry-After. Call repeatedly to queue several."""
        if status is None:
            status = 429 if error == "ratelimited" else 200
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._failures.append(Failure(error, status, retry_after))

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method]

    def take_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    # -- the Web API methods -------------------------------------------------------------
    def api(self, method: str, params: dict[str, Any], auth: str | None) -> dict[str, Any]:
        if not auth or not auth.startswith("Bearer "):
            return {"ok": False, "error": "not_authed"}
        if auth.removeprefix("Bearer ") != self.token:
            return {"ok": False, "error": "invalid_auth"}
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        return handler(params) if handler else {"ok": False, "error": "unknown_method"}

    def m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "http://127.0.0.1:9/", "team": "Fake", "user": "ndex-bot",
                "team_id": "T0FAKE", "user_id": "U0BOT0000", "bot_id": "B0BOT0000"}

    def m_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        start = int(params.get("cursor") or 0)
        size = min(int(params.get("limit") or self.page_size), self.page_size)
        page = USERS[start:start + size]
        more = start + size < len(USERS)
        return {"ok": True, "members": page,
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}

    def m_users_lookupByEmail(self, params: dict[str, Any]) -> dict[str, Any]:
        user = next((u for u in USERS if u["profile"]["email"] == params.get("email")), None)
        return {"ok": True, "user": user} if user else {"ok": False, "error": "users_not_found"}

    def m_conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        user = params.get("users", "")
        if user not in {u["id"] for u in USERS}:
            return {"ok": False, "error": "user_not_found"}
        dm = "D" + user[1:]
        self.dms[dm] = user
        return {"ok": True, "channel": {"id": dm}}

    def m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        known = channel in CHANNELS or channel in self.dms or channel.lstrip("#") in CHANNELS.values()
        if not known:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text"):
            return {"ok": False, "error": "no_text"}
        self.messages.append({"channel": channel, "text": params["text"]})
        return {"ok": True, "channel": channel, "ts": f"{len(self.messages)}.000100",
                "message": {"text": params["text"], "type": "message"}}


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _params(self) -> dict[str, Any]:
            params: dict[str, Any] = dict(parse_qsl(urlsplit(self.path).query))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            if "json" in (self.headers.get("Content-Type") or ""):
                params.update(json.loads(body or "{}"))
            elif body:
                params.update(parse_qsl(body))
            return params

        def _serve(self) -> None:
            path = urlsplit(self.path).path
            params = self._params()
            method = path.removeprefix("/api/") if path.startswith("/api/") else "webhook"
            fake.requests.append({"method": method, "path": path, "verb": self.command, "params": params,
                                  "authorization": self.headers.get("Authorization")})
            if method == "webhook":
                self._webhook(path, params)
            else:
                self._api(method, params)

        def _api(self, method: str, params: dict[str, Any]) -> None:
            failure = fake.take_failure()
            if failure:
                self._reply(failure.status, {"ok": False, "error": failure.error}, failure.retry_after)
            else:
                self._reply(200, fake.api(method, params, self.headers.get("Authorization")))

        def _webhook(self, path: str, params: dict[str, Any]) -> None:
            failure = fake.take_failure()
            if failure:
                status = failure.status if failure.status != 200 else 403
                self._reply(status, failure.error, failure.retry_after)
            elif path != WEBHOOK_PATH:
                self._reply(404, "no_service")
            elif not params.get("text"):
                self._reply(400, "no_text")
            else:
                fake.messages.append({"channel": "webhook", "text": params["text"]})
                self._reply(200, "ok")

        def _reply(self, status: int, body: dict[str, Any] | str, retry_after: int | None = None) -> None:
            raw = (json.dumps(body) if isinstance(body, dict) else body).encode("utf-8")
            self.send_response(status)
            kind = "application/json; charset=utf-8" if isinstance(body, dict) else "text/html"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(raw)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@pytest.fixture
def slack_server() -> Iterator[FakeSlack]:
    """A running fake Slack on a free port of 127.0.0.1, stopped after the test."""
    fake = FakeSlack()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    fake.base_url = f"http://{host}:{port}/api/"
    fake.webhook_url = f"http://{host}:{port}{WEBHOOK_PATH}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack",
                              daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
