"""ndex serve logs requests only when asked: a multi-day ingest makes millions of them."""
import urllib.request

import pytest

from ndex.cli.local_server import LocalServer


@pytest.mark.parametrize("flags,logged", [((), False), (("--access_log",), True)])
def test_access_log_is_opt_in(tmp_path, flags, logged):
    log = tmp_path / "serve.log"
    with LocalServer(tmp_path / "data", log_path=log, extra_args=flags) as server:
        urllib.request.urlopen(f"{server.remote.url}/v1/collection/", timeout=10).read()
    assert ("GET /v1/collection/" in log.read_text()) is logged
