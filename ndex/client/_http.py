"""The only module that knows `requests`: one pooled session, retries, error translation, counters.

Every answer that is not the expected success status becomes an exception of `ndex.errors`:

    400 BadRequest · 401/403 AuthError · 404 ResourceNotFound · 409 Conflict · 413 RequestTooLarge
    429 with Retry-After, 503 Throttled(retry_after) · 429 without Retry-After or with BOSS code 3004
    QuotaExceeded (BossDB's usage quota: never retried) · other 5xx ServerError · other unexpected status RemoteError
    connection failure RemoteUnreachable · timeout RemoteTimeout · cut-off/undecodable body CorruptBody
    a host name that does not resolve, a failed TLS handshake, an unusable URL: ConfigError (never retried)

Retryable errors (`ndex.errors.is_retryable`) are retried with jittered exponential backoff, or after
the server's Retry-After; a 4xx never is. The token travels only in the Authorization header: it is
never part of a URL, a log line, an exception message or a repr.
"""
from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import os
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ndex.config import split_url
from ndex.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    Conflict,
    CorruptBody,
    NdexError,
    QuotaExceeded,
    RemoteError,
    RemoteTimeout,
    RemoteUnreachable,
    RequestTooLarge,
    ResourceNotFound,
    ServerError,
    Throttled,
    UsageError,
    is_retryable,
)

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0  # seconds; past this, waiting longer rarely helps a multi-day transfer
MAX_RETRY_AFTER = 600.0  # a server hint beyond BOSS's own 600 s request limit is not believed
EXCERPT_CHARS = 200  # enough of an HTML error page to recognise it, short enough for one line
QUOTA_CODE = 3004  # BOSS's code on the 429 its binary renderers send when a usage quota is spent
STATUS_ERRORS: dict[int, type[RemoteError]] = {
    400: BadRequest, 401: AuthError, 403: AuthError, 404: ResourceNotFound, 409: Conflict,
    413: RequestTooLarge, 429: Throttled, 503: Throttled,
}


@dataclass(frozen=True)
class ClientStats:
    """What went over the wire: attempts sent (retries included), retries, body bytes in and out."""

    requests: int = 0
    retries: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(frozen=True)
class Reply:
    """A successful answer: status, raw body and what the caller's `decode` made of it."""

    status: int
    body: bytes
    value: Any = None

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            raise RemoteError(f"expected a JSON answer, got: {excerpt(self.body)!r}", status=self.status) from None


@dataclass(frozen=True)
class Call:
    """One logical request, re-sent as is on every retry."""

    method: str
    url: str
    what: str  # 'GET /v1/...' for messages: never the host's credentials
    expect: tuple[int, ...]
    body: bytes | None
    headers: dict[str, str]
    decode: Callable[[bytes], Any] | None


class Counters:
    """Thread-safe running totals behind `ClientStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = ClientStats()

    def add(self, *, requests: int = 0, retries: int = 0, bytes_in: int = 0, bytes_out: int = 0) -> None:
        with self._lock:
            t = self._totals
            self._totals = ClientStats(t.requests + requests, t.retries + retries,
                                       t.bytes_in + bytes_in, t.bytes_out + bytes_out)

    def snapshot(self) -> ClientStats:
        with self._lock:
            return self._totals


# --- turning answers and foreign exceptions into ndex errors ------------------------------------------


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """One line of text from a body: tags of an HTML page dropped, whitespace collapsed, truncated."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    text = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(body: bytes) -> tuple[int | None, str]:
    """(BOSS code, message) from BOSS's {"status","code","message"}, DRF's {"detail"} or any other body."""
    try:
        data = jsonlib.loads(body)
    except ValueError:
        return None, excerpt(body)
    if isinstance(data, dict) and "message" in data:
        code = data.get("code")
        return (int(str(code)) if isinstance(code, int) or str(code).isdigit() else None), excerpt(str(data["message"]))
    if isinstance(data, dict) and "detail" in data:
        return None, excerpt(str(data["detail"]))
    return None, excerpt(body)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def error_for_status(status: int, body: bytes, headers: Mapping[str, str], what: str, url: str,
                     reason: str = "") -> RemoteError:
    """The ndex exception for an HTTP answer that was not the expected success."""
    code, text = parse_error_body(body)
    text = text or reason or "no message"
    if status < 400:
        return RemoteError(f"{what}: unexpected answer HTTP {status}: {text}", status=status, code=code, url=url)
    cls = STATUS_ERRORS.get(status, ServerError if status >= 500 else RemoteError)
    message = f"{what}: {text}"
    if cls is Throttled:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if status == 429 and (retry_after is None or code == QUOTA_CODE):
            return QuotaExceeded(f"{what}: the server's usage quota is spent ({text}): re-run the same command "
                                 "after it resets (BossDB: the next day; it continues where it stopped), or ask "
                                 "the server's administrators for a larger quota", status=status, code=code, url=url)
        return Throttled(message, retry_after=retry_after, status=status, code=code, url=url)
    return cls(message, status=status, code=code, url=url)


def innermost_reason(exc: BaseException) -> str:
    """The useful part of a requests/urllib3 error ('[Errno 111] Connection refused'), one line."""
    inner: BaseException = exc
    for _ in range(4):  # requests wraps urllib3's MaxRetryError/ProtocolError, which wrap the cause
        cause = getattr(inner, "reason", None) or (inner.args[0] if inner.args else None)
        if not isinstance(cause, BaseException):
            break
        inner = cause
    text = inner.args[0] if inner.args and isinstance(inner.args[0], str) else str(inner)
    text = re.sub(r"<[^>]*>:?\s*", "", text)  # drop '<HTTPConnection object at 0x..>:'
    return excerpt(text) or type(exc).__name__


def causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: requests and urllib3 nest the real cause in `reason`, `args[0]`, `__cause__`."""
    found: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(found) < 16:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is f for f in found):
            continue
        found.append(item)
        todo += [getattr(item, "reason", None), item.args[0] if item.args else None, item.__cause__, item.__context__]
    return found


def lasting_failure(exc: BaseException, what: str, host: str) -> ConfigError | None:
    """A ConfigError (not retried) for a failure that a retry cannot cure: the name does not resolve,
    or the TLS handshake failed (a certificate, or https to a plain-http server); None otherwise."""
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror) and cause.errno != socket.EAI_AGAIN:  # EAI_AGAIN: DNS is down
            return ConfigError(f"{what}: the host name in {host} does not resolve ({cause.strerror}): "
                               "fix --url or the config file's host")
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return ConfigError(f"{what}: the TLS handshake with {host} failed ({innermost_reason(exc)}): a plain "
                               "HTTP server (a local ndex serve) needs an http:// URL; a private certificate "
                               "needs REQUESTS_CA_BUNDLE=its CA file")
    return None


def translate(exc: requests.RequestException, what: str, host: str) -> NdexError:
    """The ndex exception for a requests failure that produced no usable answer."""
    reason = innermost_reason(exc)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return CorruptBody(f"{what}: the answer from {host} was cut off or damaged ({reason})")
    if isinstance(exc, requests.Timeout):  # before ConnectionError: ConnectTimeout is both
        return RemoteTimeout(f"{what}: {host} did not answer in time ({reason})")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return ConfigError(f"{what}: the server URL is not usable ({reason}): fix --url or the config file")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return RemoteError(f"{what}: {host} redirects in a loop ({reason})")
    return lasting_failure(exc, what, host) or RemoteUnreachable(f"{what}: cannot reach {host} ({reason})")


def check_length(response: requests.Response, body: bytes, what: str) -> None:
    """CorruptBody if the body is shorter or longer than its Content-Length announced."""
    announced = response.headers.get("Content-Length")
    if announced is None or response.headers.get("Content-Encoding") or response.request.method == "HEAD":
        return
    if announced.isdigit() and int(announced) != len(body):
        raise CorruptBody(f"{what}: body has {len(body)} bytes but Content-Length said {announced}")


def read_body(response: requests.Response, what: str, host: str) -> bytes:
    """The whole body in one read, and the connection back to the pool.

    `response.content` reads in 10 KiB pieces: ~400 Python calls per 4 MiB block, which with several
    threads contending for the GIL halved cutout throughput (measured). One urllib3 read avoids it.
    """
    if response.raw is None:  # an injected session that builds responses itself
        return response.content
    try:
        return response.raw.read(decode_content=True) or b""
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
        raise CorruptBody(f"{what}: the answer from {host} was cut off or damaged ({exc})") from None
    except urllib3.exceptions.ReadTimeoutError:
        raise RemoteTimeout(f"{what}: {host} did not finish sending in time") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise RemoteUnreachable(f"{what}: the connection to {host} broke ({exc})") from None
    finally:
        response.close()


# --- the session --------------------------------------------------------------------------------------


def make_session(factory: Callable[[], requests.Session], base_url: str, token: str, threads: int,
                 user_agent: str) -> requests.Session:
    """A session whose connection pool holds one connection per worker thread.

    requests would look up proxies, the CA bundle and ~/.netrc in the environment again on every
    request (about a sixth of the client's CPU per cutout, measured with 4 threads); for the one
    server a session talks to they are resolved here, once. ~/.netrc is not read: its Basic
    credentials would replace the token.
    """
    session = factory()
    adapter = HTTPAdapter(pool_connections=threads, pool_maxsize=threads, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.headers["Authorization"] = f"Token {token}"
    session.headers["User-Agent"] = user_agent
    return session


RetryListener = Callable[[str, BaseException], None]  # hears (what, error) before every retry


class Http:
    """Pooled, retrying, counting HTTP against one server; answers are `Reply`, failures `NdexError`.

    Every retry is logged at WARNING ("retrying (2/7) in 4 s: ...") and told to the retry listeners:
    `on_retry`, the caller's own count of retries, and any listener added for a while, e.g. by a
    push that slows down when the server throttles.
    """

    def __init__(self, base_url: str, token: str, *, threads: int = 8,
                 timeout: tuple[float, float] = (10.0, 300.0), retries: int = 6, backoff: float = 0.5,
                 session_factory: Callable[[], requests.Session] | None = None,
                 on_retry: RetryListener | None = None,
                 sleep: Callable[[float], None] = time.sleep, jitter: Callable[[], float] = random.random,
                 user_agent: str = "ndex") -> None:
        if threads < 1 or retries < 0 or backoff < 0:
            raise UsageError(f"threads ({threads}) must be at least 1, retries ({retries}) and backoff "
                             f"({backoff}) at least 0")
        split_url(base_url)  # ConfigError now for a URL that every request would fail on
        self.base_url = base_url.rstrip("/")
        self.host = self.base_url.split("://", 1)[-1]
        self.timeout: tuple[float, float] = (timeout[0], timeout[1])
        self.retries, self.backoff = retries, backoff
        self.sleep, self.jitter = sleep, jitter
        self._listeners: tuple[RetryListener, ...] = (on_retry,) if on_retry is not None else ()
        self._listeners_lock = threading.Lock()
        self._token = token
        self.counters = Counters()
        self.session = make_session(session_factory or requests.Session, self.base_url, token, threads, user_agent)

    def __repr__(self) -> str:
        return f"Http({self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    @property
    def stats(self) -> ClientStats:
        return self.counters.snapshot()

    def add_retry_listener(self, listener: RetryListener) -> None:
        with self._listeners_lock:
            self._listeners = (*self._listeners, listener)

    def remove_retry_listener(self, listener: RetryListener) -> None:
        """Stop telling `listener` (added earlier) about retries; the other listeners stay."""
        with self._listeners_lock:
            at = self._listeners.index(listener)
            self._listeners = self._listeners[:at] + self._listeners[at + 1:]

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), query: str = "",
                body: bytes | None = None, headers: Mapping[str, str] | None = None,
                decode: Callable[[bytes], Any] | None = None, retries: int | None = None) -> Reply:
        """Send until an expected status arrives (then `decode` its body) or a non-retryable error occurs.

        `decode` runs inside the retry loop: a body it rejects with CorruptBody is fetched again.
        `retries` overrides the client's number of retries for this call.
        """
        retries = self.retries if retries is None else retries
        call = Call(method, self.base_url + path + (f"?{query}" if query else ""), f"{method} {path}",
                    expect, body, dict(headers or {}), decode)
        attempt = 0
        while True:
            try:
                return self._attempt(call, retry=attempt > 0)
            except NdexError as exc:
                if not is_retryable(exc) or attempt >= retries:
                    raise
                self._pause(call.what, exc, attempt, retries)
                attempt += 1

    def _attempt(self, call: Call, retry: bool) -> Reply:
        self.counters.add(requests=1, retries=int(retry), bytes_out=len(call.body or b""))
        started = time.monotonic()
        try:
            response = self.session.request(call.method, call.url, data=call.body, headers=call.headers,
                                            timeout=self.timeout, stream=True)
        except requests.RequestException as exc:
            raise self._scrubbed(translate(exc, call.what, self.host)) from None
        body = read_body(response, call.what, self.host)
        self.counters.add(bytes_in=len(body))
        log.debug("%s -> %s (%d bytes in %.2f s)", call.what, response.status_code, len(body),
                  time.monotonic() - started)
        if response.status_code not in call.expect:
            raise self._scrubbed(error_for_status(response.status_code, body, response.headers,
                                                  call.what, response.url, response.reason or ""))
        check_length(response, body, call.what)
        try:
            value = call.decode(body) if call.decode else None
        except CorruptBody as exc:
            raise CorruptBody(f"{call.what}: {exc}") from None
        return Reply(response.status_code, body, value)

    def _pause(self, what: str, exc: NdexError, attempt: int, retries: int) -> None:
        delay = self.delay(exc, attempt)
        # WARNING: shown at the default verbosity, so a run that stalls on retries says why
        log.warning("retrying (%d/%d) in %.0f s: %s", attempt + 1, retries, delay, exc)
        for listener in self._listeners:  # a snapshot: listeners added or removed meanwhile hear the next one
            listener(what, exc)
        self.sleep(delay)

    def delay(self, exc: BaseException, attempt: int) -> float:
        """Seconds to wait before retry `attempt + 1`: the server's Retry-After, else jittered backoff."""
        hint = getattr(exc, "retry_after", None)
        if hint is not None:  # a little jitter on top so that many workers do not return at once
            return hint * (1.0 + 0.1 * self.jitter())
        return min(MAX_BACKOFF, self.backoff * 2**attempt) * (0.5 + 0.5 * self.jitter())

    def _scrubbed(self, exc: NdexError) -> NdexError:
        """The error with the token masked, should a server or library have echoed it back."""
        if len(self._token) < 8 or self._token not in str(exc.args[0] if exc.args else ""):
            return exc
        masked = str(exc.args[0]).replace(self._token, "<token>")
        exc.args = (masked, *exc.args[1:])
        if isinstance(exc, RemoteError):
            exc.message = masked
        return exc


