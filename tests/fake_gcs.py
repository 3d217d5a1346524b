"""A loopback stand-in for the Google Cloud Storage JSON API, enough for tensorstore's gcs driver to read.

tensorstore sends `GET /storage/v1/b/BUCKET/o/OBJECT?alt=media` (the object name URL-encoded) to the
address in TENSORSTORE_GCS_HTTP_URL, with the bearer token GOOGLE_AUTH_TOKEN_FOR_TESTING gives it
(without that variable it would look for credentials, and on a machine that has none ask a metadata
server off this machine). Objects are the files under `root/BUCKET/`; a read answers the bytes with
the object's generation, anything else GCS's 404 JSON. Requests are counted by object name, and
those without the expected token are refused with 401, so a test sees what was read and how.
"""
from __future__ import annotations

import collections
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOKEN = "loopback-test-token"


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    reads: collections.Counter
    protocol_version = "HTTP/1.1"  # keep-alive, as GCS answers
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall between them

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urllib.parse.urlsplit(self.path)
        segments = parts.path.split("/", 6)  # '', storage, v1, b, BUCKET, o, OBJECT
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._error(401, "no valid token")
        if len(segments) < 7 or segments[1:4] != ["storage", "v1", "b"] or segments[5] != "o":
            return self._error(400, "not an object read")
        name = urllib.parse.unquote(segments[6])
        path = self.root / segments[4] / name
        if urllib.parse.parse_qs(parts.query).get("alt") != ["media"] or not path.is_file():
            return self._error(404, "No such object: " + name)
        self.reads[name] += 1
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("x-goog-generation", str(path.stat().st_mtime_ns // 1000))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str) -> None:
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def fake_gcs(root: Path) -> Iterator[tuple[str, collections.Counter]]:
    """Serve `root` (one directory per bucket) on a free 127.0.0.1 port: (its URL, reads per object)."""
    reads: collections.Counter = collections.Counter()
    handler = type("Handler", (_Handler,), {"root": root, "reads": reads})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", reads
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
