"""Fixtures every test directory may use: a real `ndex serve` (fixtures_server), a fake Slack API
(fixtures_slack), a fake render-ws (fixtures_render),
moto's S3 server (fixtures_s3) and a PostgreSQL server (fixtures_postgres), each on a free 127.0.0.1 port."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures_postgres import *  # noqa: E402,F403
from fixtures_render import *  # noqa: E402,F403
from fixtures_s3 import *  # noqa: E402,F403
from fixtures_server import *  # noqa: E402,F403
from fixtures_slack import *  # noqa: E402,F403
