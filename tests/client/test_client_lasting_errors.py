"""Failures a retry cannot cure end the call at once with one line that names the fix; the retries
that are taken are shown at the default verbosity."""
from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
from client_fakes import TOKEN

from ndex.client._http import Http
from ndex.errors import ConfigError, RemoteUnreachable


def never_sleeps(seconds: float) -> None:
    pytest.fail("a lasting failure must not be retried")


def test_a_name_that_does_not_resolve_is_not_retried(monkeypatch):
    def no_such_name(host, *args, **kw):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # no DNS server is asked
    http = Http("http://ndex-no-such-host.invalid", TOKEN, retries=5, sleep=never_sleeps)
    with pytest.raises(ConfigError) as info:
        http.request("GET", "/v1/collection/")
    text = str(info.value)
    assert "does not resolve" in text and "ndex-no-such-host.invalid" in text and "--url" in text
    assert http.stats.requests == 1


def test_a_temporary_dns_outage_is_still_retried(monkeypatch):
    def dns_down(host, *args, **kw):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", dns_down)
    sleeps: list[float] = []
    http = Http("http://ndex-no-such-host.invalid", TOKEN, retries=2, backoff=0.01, sleep=sleeps.append)
    with pytest.raises(RemoteUnreachable):
        http.request("GET", "/v1/collection/")
    assert len(sleeps) == 2


def test_https_to_a_plain_http_server_is_a_tls_error_that_suggests_http(raw_server):
    url = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").replace("http://", "https://")
    http = Http(url, TOKEN, retries=5, sleep=never_sleeps)
    with pytest.raises(ConfigError) as info:
        http.request("GET", "/ping/")
    text = str(info.value)
    assert "TLS handshake" in text and "http:// URL" in text and "SSLError" not in text
    assert http.stats.requests == 1


@pytest.mark.parametrize("url, words", [
    ("127.0.0.1:8080", "write http://127.0.0.1:8080"),
    ("http://[::1", "malformed"),
    ("http://127.0.0.1:99999", "malformed"),
    ("ftp://127.0.0.1", "http(s)://host[:port]"),
])
def test_a_url_every_request_would_fail_on_is_refused_up_front(url, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        Http(url, TOKEN)


@pytest.mark.parametrize("url", ["http://[::1", "localhost:8080"])
def test_ndex_info_with_an_unusable_url_ends_with_one_line(url):
    done = subprocess.run([sys.executable, "-m", "ndex.cli.main", "info", "--url", url, "--token", "t"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr


def test_retries_are_shown_at_the_default_verbosity_with_count_and_pause(raw_server):
    url = raw_server(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n")
    done = subprocess.run([sys.executable, "-m", "ndex.cli.main", "info", "--url", url, "--token", "t"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "retrying (1/6) in 0 s: GET /v1/collection/: Service Unavailable" in done.stderr
    assert "retrying (6/6)" in done.stderr and "retrying (7/6)" not in done.stderr
