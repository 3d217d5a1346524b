"""The fixtures every test directory may use, as pytest plugins (pyproject's `pythonpath = ["tests"]`
makes these modules, and the helpers next to them, importable by name: `from fixtures_server import
make_channel`). Each starts its component on a free 127.0.0.1 port and stops it afterwards:
a real `ndex serve` (fixtures_server), the server app in-process behind the real client
(fixtures_inprocess), a fake Slack API (fixtures_slack), a fake render-ws (fixtures_render), moto's S3
server (fixtures_s3) and a PostgreSQL server (fixtures_postgres). A directory's own conftest.py adds
the fixtures only its tests use."""

pytest_plugins = [
    "fixtures_inprocess",
    "fixtures_postgres",
    "fixtures_render",
    "fixtures_s3",
    "fixtures_server",
    "fixtures_slack",
]
