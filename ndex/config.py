"""Where ndex finds the server URL and token.

Precedence, highest first: explicit arguments (`--url`, `--token`) > environment
(`NDEX_URL`, `NDEX_TOKEN`, `INTERN_PROTOCOL`/`INTERN_HOST`/`INTERN_TOKEN`, `BOSS_TOKEN`) >
a config file (`--config_file`, else `./neurodata.cfg`, else `~/.intern/intern.cfg`; INI
`[Default]` with `protocol`, `host`, `token`) > the default URL (https://api.bossdb.io).
The token is never part of a repr, a log line or an error message.
"""
from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ndex.errors import ConfigError

DEFAULT_URL = "https://api.bossdb.io"
LOCAL_CONFIG = "neurodata.cfg"
INTERN_CONFIG = "~/.intern/intern.cfg"


@dataclass(frozen=True)
class Remote:
    """Connection settings of one BOSS server."""

    protocol: str
    host: str
    token: str = field(repr=False)
    origin: str = ""  # where the URL and token came from, for messages (never the token itself)

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.host}"

    def intern_config(self) -> dict[str, str]:
        """The dict `intern.remote.boss.BossRemote` accepts."""
        return {"protocol": self.protocol, "host": self.host, "token": self.token}


def split_url(url: str) -> tuple[str, str]:
    """'http://localhost:8080/' -> ('http', 'localhost:8080'); ConfigError for anything else.

    A bare host is refused rather than guessed: https to a local http server fails as a TLS error
    that names neither, and http to BossDB would send the token in clear text.
    """
    text = url.strip().rstrip("/")
    if "://" not in text:
        raise ConfigError(f"server URL {url!r} has no scheme: write http://{text} (a local ndex serve) "
                          f"or https://{text}")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- parses the port: 'host:99999' or 'host:x' raise here, not mid-run
    except ValueError as exc:
        raise ConfigError(f"server URL {url!r} is malformed ({exc}): write http(s)://host[:port]") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"server URL {url!r} is not of the form http(s)://host[:port]")
    return parts.scheme, parts.netloc


def read_config_file(path: Path) -> dict[str, str]:
    """The `[Default]` section of an intern-style INI file (keys lower-cased)."""
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if "Default" not in parser:
        raise ConfigError(f"config file {path} has no [Default] section with protocol, host and token")
    values = {k.lower(): v.strip() for k, v in parser["Default"].items()}
    if values.get("host") and not values.get("protocol"):
        # intern refuses such a file too; guessing https would turn a local http server into a TLS error
        raise ConfigError(f"config file {path} has host but no protocol: add 'protocol = https' (or http) "
                          "to its [Default] section")
    return values


def config_candidates(config_file: str | os.PathLike | None, cwd: Path, home: Path) -> list[Path]:
    if config_file:
        return [Path(os.path.expanduser(str(config_file)))]
    return [cwd / LOCAL_CONFIG, Path(INTERN_CONFIG.replace("~", str(home), 1))]


def discover(*, url: str | None = None, token: str | None = None, config_file: str | os.PathLike | None = None,
             environ: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None) -> Remote:
    """Resolve URL and token by the documented precedence; ConfigError names every place looked at."""
    env = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    looked: list[str] = ["--token"]

    file_values: dict[str, str] = {}
    file_used = ""
    for path in config_candidates(config_file, cwd, home):
        looked.append(str(path))
        if path.is_file():
            file_values, file_used = read_config_file(path), str(path)
            break
        if config_file:
            raise ConfigError(f"config file {path} does not exist: fix --config_file or drop it")

    env_url = env.get("NDEX_URL") or (
        f"{env['INTERN_PROTOCOL']}://{env['INTERN_HOST']}" if env.get("INTERN_PROTOCOL") and env.get("INTERN_HOST")
        else "")
    file_url = f"{file_values['protocol']}://{file_values['host']}" if file_values.get("host") else ""
    chosen_url, url_origin = next(((u, o) for u, o in ((url, "--url"), (env_url, "environment"),
                                                       (file_url, file_used), (DEFAULT_URL, "default")) if u))
    protocol, host = split_url(chosen_url)

    looked[1:1] = ["NDEX_TOKEN", "INTERN_TOKEN", "BOSS_TOKEN"]
    candidates = ((token, "--token"), (env.get("NDEX_TOKEN"), "NDEX_TOKEN"), (env.get("INTERN_TOKEN"), "INTERN_TOKEN"),
                  (env.get("BOSS_TOKEN"), "BOSS_TOKEN"), (file_values.get("token"), file_used))
    found = next(((t.strip(), o) for t, o in candidates if t and t.strip()), None)
    if found is None:
        raise ConfigError("no API token found; looked at " + ", ".join(looked) +
                          ": pass --token, set NDEX_TOKEN, or write a [Default] token to neurodata.cfg")
    return Remote(protocol, host, found[0], origin=f"url from {url_origin}, token from {found[1]}")
