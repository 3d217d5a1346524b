"""The HTTP layer: status -> exception mapping, retries and backoff, token hygiene, pool and counters."""
from __future__ import annotations

import email.utils
import json
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import responses
from client_fakes import BASE, TOKEN
from hypothesis import given
from hypothesis import strategies as st

from ndex.client import BossClient
from ndex.client._http import Http, excerpt, parse_error_body, parse_retry_after
from ndex.config import Remote
from ndex.errors import (
    AuthError,
    BadRequest,
    Conflict,
    CorruptBody,
    RemoteError,
    RemoteTimeout,
    RemoteUnreachable,
    RequestTooLarge,
    ResourceNotFound,
    RetryableRemoteError,
    ServerError,
    Throttled,
    TransportError,
    UsageError,
)

URL = f"{BASE}/v1/collection/c1"
DJANGO_404 = b"""<!DOCTYPE html><html lang="en"><head><title>Page not found at /v1/nope</title>
<style type="text/css">html * { padding:0; margin:0; }</style></head>
<body><div id="summary"><h1>Page not found <span>(404)</span></h1>
<p>Using the URLconf defined in <code>boss.urls</code>, Django tried these URL patterns.</p>""" + b"x" * 5000


def envelope(status: int, code: int, message: str) -> dict:
    return {"status": status, "code": code, "message": message}


# --- status -> exception ------------------------------------------------------------------------------


@pytest.mark.parametrize("status, cls", [
    (400, BadRequest), (401, AuthError), (403, AuthError), (404, ResourceNotFound), (409, Conflict),
    (413, RequestTooLarge), (405, RemoteError), (415, RemoteError),
])
def test_client_errors_map_to_their_class_and_are_never_retried(client, rsps, sleeps, status, cls):
    rsps.get(URL, status=status, json=envelope(status, 4000, "Collection c1 not found"))
    with pytest.raises(cls) as info:
        client.get_collection("c1")
    exc = info.value
    assert type(exc) is cls and not isinstance(exc, (RetryableRemoteError, TransportError))
    assert (exc.status, exc.code) == (status, 4000)
    assert exc.message == "GET /v1/collection/c1: Collection c1 not found"
    assert str(exc) == f"GET /v1/collection/c1: Collection c1 not found (HTTP {status}, BOSS code 4000)"
    assert exc.url == URL
    assert len(rsps.calls) == 1 and sleeps == []


@pytest.mark.parametrize("status, cls", [(500, ServerError), (502, ServerError), (504, ServerError),
                                         (503, Throttled)])
def test_server_errors_map_to_retryable_classes(client, rsps, status, cls):
    rsps.get(URL, status=status, json=envelope(status, 9002, "boom"))
    with pytest.raises(cls) as info:
        client.get_collection("c1")
    assert info.value.status == status and info.value.code == 9002
    assert len(rsps.calls) == 4  # the first try and retries=3


def test_drf_detail_body_becomes_the_message(client, rsps):
    rsps.get(URL, status=401, json={"detail": "Authentication credentials were not provided."})
    with pytest.raises(AuthError) as info:
        client.get_collection("c1")
    assert info.value.code is None
    assert info.value.message.endswith(": Authentication credentials were not provided.")
    assert isinstance(info.value, PermissionError)


def test_html_error_page_is_kept_as_a_short_tagless_excerpt(client, rsps):
    rsps.get(URL, status=404, body=DJANGO_404, content_type="text/html")
    with pytest.raises(ResourceNotFound) as info:
        client.get_collection("c1")
    text = info.value.message
    assert "Page not found at /v1/nope" in text and "<" not in text and "padding" not in text
    assert len(text) < 260 and text.endswith("…")


def test_empty_error_body_falls_back_to_the_reason_phrase(client, rsps):
    rsps.get(URL, status=409, body=b"")
    with pytest.raises(Conflict) as info:
        client.get_collection("c1")
    assert info.value.message == "GET /v1/collection/c1: Conflict"


def test_unexpected_success_code_is_an_error(client, rsps):
    rsps.post(URL, status=200, json={"name": "c1"})
    with pytest.raises(RemoteError, match="unexpected answer HTTP 200") as info:
        client.create_collection("c1")
    assert type(info.value) is RemoteError and len(rsps.calls) == 1


@given(st.binary(max_size=300))
def test_any_error_body_parses_to_one_short_line(body):
    code, message = parse_error_body(body)
    assert code is None or isinstance(code, int)
    assert "\n" not in message and len(message) <= 200


def test_excerpt_drops_scripts_and_collapses_whitespace():
    assert excerpt(b"<p>a\n\n  b</p><script>var t = 1;</script> c") == "a b c"
    assert len(excerpt("y" * 1000, limit=50)) == 50


# --- retries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_retryable_statuses_are_retried_until_success(client, rsps, sleeps, status):
    rsps.get(URL, status=status, json=envelope(status, 9002, "later"))
    rsps.get(URL, status=status, json=envelope(status, 9002, "later"))
    rsps.get(URL, json={"name": "c1"})
    assert client.get_collection("c1").name == "c1"
    assert len(rsps.calls) == 3 and len(sleeps) == 2
    assert client.stats.requests == 3 and client.stats.retries == 2


@pytest.mark.parametrize("error, cls", [(requests.ConnectionError("connection reset by peer"), RemoteUnreachable),
                                        (requests.ReadTimeout("read timed out"), RemoteTimeout),
                                        (requests.ConnectTimeout("connect timed out"), RemoteTimeout),
                                        (requests.exceptions.ChunkedEncodingError("IncompleteRead"), CorruptBody)])
def test_transport_errors_are_translated_and_retried(client, rsps, sleeps, error, cls):
    rsps.get(URL, body=error)
    rsps.get(URL, json={"name": "c1"})
    assert client.get_collection("c1").name == "c1"
    assert len(sleeps) == 1
    rsps.replace(responses.GET, URL, body=error)
    with pytest.raises(cls) as info:
        client.get_collection("c1")
    assert "GET /v1/collection/c1" in str(info.value) and info.value.__cause__ is None


def test_retries_give_up_after_n_and_raise_the_last_error(client, rsps, sleeps):
    for text in ("first", "second", "third"):
        rsps.get(URL, status=500, json=envelope(500, 9002, text))
    rsps.get(URL, status=502, body=b"<html><body>Bad Gateway from the proxy</body></html>")
    with pytest.raises(ServerError) as info:
        client.get_collection("c1")
    assert info.value.status == 502 and "Bad Gateway from the proxy" in str(info.value)
    assert len(rsps.calls) == 4 and len(sleeps) == 3


def test_backoff_doubles_with_jitter_and_is_capped():
    http = Http(BASE, TOKEN, backoff=0.5, jitter=lambda: 1.0)
    assert [http.delay(ServerError("x"), a) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert http.delay(ServerError("x"), 30) == 60.0
    low = Http(BASE, TOKEN, backoff=0.5, jitter=lambda: 0.0)
    assert [low.delay(RemoteTimeout("x"), a) for a in range(3)] == [0.25, 0.5, 1.0]


@given(attempt=st.integers(0, 40), jitter=st.floats(0, 1), backoff=st.floats(0, 10))
def test_backoff_stays_between_half_and_full_exponential_delay(attempt, jitter, backoff):
    full = min(60.0, backoff * 2**attempt)
    delay = Http(BASE, TOKEN, backoff=backoff, jitter=lambda: jitter).delay(RemoteUnreachable("x"), attempt)
    assert full / 2 - 1e-9 <= delay <= full + 1e-9


def test_retry_after_seconds_is_honoured(client, rsps, sleeps):
    rsps.get(URL, status=503, headers={"Retry-After": "7"}, json=envelope(503, 0, "busy"))
    rsps.get(URL, status=429, headers={"Retry-After": "2"}, json={"detail": "throttled"})
    rsps.get(URL, json={"name": "c1"})
    client.get_collection("c1")
    assert 7.0 <= sleeps[0] <= 7.7 and 2.0 <= sleeps[1] <= 2.2


def test_retry_after_is_carried_by_the_final_error(client, rsps):
    rsps.get(URL, status=429, headers={"Retry-After": "3"}, json={"detail": "slow down"})
    with pytest.raises(Throttled) as info:
        client.get_collection("c1")
    assert info.value.retry_after == 3.0


def test_retry_after_parsing():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("-4") == 0.0 and parse_retry_after("999999") == 600.0
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= parse_retry_after(in_a_minute) <= 61


def test_on_retry_hears_every_retry(remote, rsps):
    heard = []
    with BossClient(remote, retries=2, backoff=0, sleep=lambda s: None,
                    on_retry=lambda what, exc: heard.append((what, type(exc)))) as boss:
        rsps.get(URL, status=500, json=envelope(500, 9002, "x"))
        rsps.get(URL, body=requests.ConnectionError("reset"))
        rsps.get(URL, json={"name": "c1"})
        boss.get_collection("c1")
    assert heard == [("GET /v1/collection/c1", ServerError), ("GET /v1/collection/c1", RemoteUnreachable)]


def retried_get(boss: BossClient, rsps) -> None:
    """One GET that needs one retry."""
    rsps.get(URL, status=503, json=envelope(503, 9002, "busy"))
    rsps.get(URL, json={"name": "c1"})
    boss.get_collection("c1")


def test_retry_listeners_come_and_go_in_any_order_besides_on_retry(remote, rsps):
    heard = []

    def listener(name):
        return lambda what, exc: heard.append(name)

    with BossClient(remote, retries=1, backoff=0, sleep=lambda s: None, on_retry=listener("on_retry")) as boss:
        first = ExitStack()
        first.enter_context(boss.retry_listener(listener("first")))
        with boss.retry_listener(listener("second")):
            retried_get(boss, rsps)
            first.close()  # the first ends before the second: two pushes sharing one client
            retried_get(boss, rsps)
        retried_get(boss, rsps)
    assert heard == ["on_retry", "first", "second", "on_retry", "second", "on_retry"]


def test_a_retry_listener_does_not_hide_retries_from_the_log(remote, rsps, caplog):
    caplog.set_level(logging.WARNING, logger="ndex.client")
    rsps.get(URL, status=500, json=envelope(500, 9002, "x"))
    rsps.get(URL, json={"name": "c1"})
    with BossClient(remote, retries=1, backoff=0, sleep=lambda s: None) as boss:
        with boss.retry_listener(lambda what, exc: None):
            boss.get_collection("c1")
    assert [r.levelno for r in caplog.records if r.getMessage().startswith("retrying (1/1) in 0 s: GET /v1/")] == [logging.WARNING]


def test_zero_retries_means_one_attempt(remote, rsps):
    rsps.get(URL, status=500, json=envelope(500, 9002, "x"))
    with BossClient(remote, retries=0, sleep=lambda s: pytest.fail("must not sleep")) as boss:
        with pytest.raises(ServerError):
            boss.get_collection("c1")
    assert len(rsps.calls) == 1


# --- real sockets -------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_remote_unreachable_with_a_readable_reason(sleeps):
    http = Http(f"http://127.0.0.1:{closed_port()}", TOKEN, retries=2, backoff=0.01, sleep=sleeps.append)
    with pytest.raises(RemoteUnreachable) as info:
        http.request("GET", "/ping/")
    text = str(info.value)
    assert text.startswith("GET /ping/: cannot reach 127.0.0.1:") and "refused" in text
    assert "object at 0x" not in text and len(sleeps) == 2


def test_body_shorter_than_content_length_is_corrupt_and_retried(raw_server, sleeps):
    url = raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: application/blosc\r\nContent-Length: 1000\r\n"
                     b"Connection: close\r\n\r\n" + b"z" * 100)
    http = Http(url, TOKEN, retries=2, backoff=0.01, sleep=sleeps.append)
    with pytest.raises(CorruptBody, match="cut off"):
        http.request("GET", "/v1/cutout/c/e/ch/0/0:8/0:8/0:1/")
    assert len(sleeps) == 2 and http.stats.requests == 3


def test_content_length_mismatch_is_corrupt_and_retried(client, rsps, sleeps):
    rsps.get(URL, body=b'{"name": "c1"}', headers={"Content-Length": "400"})
    with pytest.raises(CorruptBody) as info:
        client.get_collection("c1")
    # urllib3 ("IncompleteRead(14 bytes read, 386 more expected)") or our own length check catches it
    assert str(info.value).startswith("GET /v1/collection/c1: ")
    assert "400" in str(info.value) or "386 more expected" in str(info.value)
    assert len(sleeps) == 3


def test_content_length_mismatch_is_checked_even_if_the_session_does_not(remote, sleeps):
    class LenientSession(requests.Session):
        """Hands back bodies as they came, like a transport that does not enforce Content-Length."""

        def request(self, method, url, **kw):
            response = requests.Response()
            response.status_code, response.url, response._content = 200, url, b'{"name": "c1"}'
            response.headers["Content-Length"] = "400"
            response.request = requests.Request(method, url).prepare()
            return response

    with BossClient(remote, retries=1, session_factory=LenientSession, sleep=sleeps.append) as boss:
        with pytest.raises(CorruptBody, match="body has 14 bytes but Content-Length said 400"):
            boss.get_collection("c1")
    assert len(sleeps) == 1


# --- token hygiene ------------------------------------------------------------------------------------


def test_token_travels_only_in_the_authorization_header(client, rsps):
    rsps.get(URL, json={"name": "c1"})
    client.get_collection("c1")
    sent = rsps.calls[0].request
    assert sent.headers["Authorization"] == f"Token {TOKEN}"
    assert TOKEN not in sent.url and sent.headers["User-Agent"].startswith("ndex/")


def test_token_never_appears_in_errors_reprs_or_logs(client, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    echo = f"Invalid token {TOKEN} for header Authorization: Token {TOKEN}"
    rsps.get(URL, status=401, json={"detail": echo})
    rsps.get(f"{BASE}/v1/coord/cf", status=500, json=envelope(500, 9002, echo))
    rsps.get(f"{BASE}/v1/collection/c2", body=requests.ConnectionError(echo))
    errors = []
    for call in (lambda: client.get_collection("c1"), lambda: client.get_coord_frame("cf"),
                 lambda: client.get_collection("c2")):
        with pytest.raises(Exception) as info:
            call()
        errors.append(info.value)
    assert [type(e) for e in errors] == [AuthError, ServerError, RemoteUnreachable]
    for exc in errors:
        assert TOKEN not in str(exc) and TOKEN not in repr(exc) and "<token>" in str(exc)
        assert TOKEN not in getattr(exc, "message", "")
    for text in (repr(client), repr(client.http), repr(client.remote), str(client.stats)):
        assert TOKEN not in text
    assert caplog.records, "the retries should have been logged"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()


# --- pool, session factory, counters ------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 8, 32])
def test_connection_pool_is_sized_to_the_threads(remote, threads):
    with BossClient(remote, threads=threads) as boss:
        for scheme in ("http://", "https://"):
            adapter = boss.http.session.get_adapter(f"{scheme}127.0.0.1:9")
            assert adapter.poolmanager.connection_pool_kw["maxsize"] == threads
            assert adapter._pool_connections == threads
            assert adapter.max_retries.total == 0  # retries are ours, counted and reported


def test_session_factory_is_used(remote, rsps):
    made = []

    class RecordingSession(requests.Session):
        def request(self, method, url, **kw):
            made.append((method, url, kw["timeout"]))
            return super().request(method, url, **kw)

    rsps.get(URL, json={"name": "c1"})
    with BossClient(remote, session_factory=RecordingSession, timeout=(1.5, 20.0)) as boss:
        boss.get_collection("c1")
        assert isinstance(boss.http.session, RecordingSession)
    assert made == [("GET", URL, (1.5, 20.0))]


def test_stats_count_requests_retries_and_bytes(client, rsps):
    failed, ok = b'{"status": 500, "code": 9002, "message": "x"}', b'{"name": "c2", "description": "d"}'
    rsps.put(URL, status=500, body=failed, content_type="application/json")
    rsps.put(URL, body=ok, content_type="application/json")
    client.update_collection("c1", name="c2", description="d")
    body_out = len(b'{"name": "c2", "description": "d"}')
    stats = client.stats
    assert (stats.requests, stats.retries) == (2, 1)
    assert stats.bytes_out == 2 * body_out
    assert stats.bytes_in == len(failed) + len(ok)


def test_stats_are_exact_under_concurrency(remote, rsps):
    rsps.get(URL, body=b"x" * 10)
    with BossClient(remote, threads=8) as boss:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: boss.http.request("GET", "/v1/collection/c1"), range(200)))
        assert boss.stats.requests == 200 and boss.stats.bytes_in == 2000


# --- a real server ------------------------------------------------------------------------------------


class KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open, so the pool is what gets exercised

    def do_GET(self):  # noqa: N802 (http.server's naming)
        authorized = self.headers["Authorization"] == f"Token {TOKEN}"
        body = json.dumps({"name": "c1"} if authorized else {"detail": "Invalid token."}).encode()
        self.send_response(200 if authorized else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def live_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_threads_share_the_pool_without_discarding_connections(live_url, caplog):
    caplog.set_level(logging.WARNING, logger="urllib3")
    remote = Remote("http", live_url.split("://")[1], TOKEN)
    with BossClient(remote, threads=6) as boss:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: boss.get_collection("c1"), range(60)))
        assert all(a.name == "c1" for a in answers) and boss.stats.requests == 60
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_only_the_http_module_imports_requests():
    package = Path(Http.__module__.replace(".", "/")).parent
    root = Path(__file__).resolve().parents[2]
    offenders = [p.name for p in (root / package).glob("*.py") if p.name != "_http.py"
                 and re.search(r"^\s*(import requests|from requests)", p.read_text(), re.M)]
    assert offenders == []


@pytest.mark.parametrize("kw", [{"threads": 0}, {"retries": -1}, {"backoff": -0.5}])
def test_impossible_settings_are_usage_errors(remote, kw):
    with pytest.raises(UsageError, match="threads .* must be at least 1"):
        BossClient(remote, **kw)


# --- the environment, read once per session --------------------------------------------------------------


def test_proxies_come_from_the_environment_once_and_no_proxy_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = Http(BASE, TOKEN).session
    assert not proxied.trust_env and proxied.proxies.get("http") == "http://127.0.0.1:3128"
    monkeypatch.setenv("NO_PROXY", BASE.split("://")[1].split(":")[0])
    assert Http(BASE, TOKEN).session.proxies == {}


def test_a_ca_bundle_from_the_environment_is_used(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert Http(BASE, TOKEN).session.verify == str(bundle)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert Http(BASE, TOKEN).session.verify is True


def test_a_netrc_entry_for_the_host_does_not_replace_the_token(monkeypatch, tmp_path, rsps):
    host = BASE.split("://")[1].split(":")[0]
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine {host} login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    rsps.get(URL, json={"name": "c1"})
    Http(BASE, TOKEN).request("GET", "/v1/collection/c1")
    assert rsps.calls[0].request.headers["Authorization"] == f"Token {TOKEN}"
