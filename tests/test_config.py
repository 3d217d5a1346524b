import pytest

from ndex.config import discover
from ndex.errors import ConfigError

TOKEN = "0123456789abcdef0123456789abcdef01234567"


def write_cfg(path, host="127.0.0.3:8000", token="filetoken"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[Default]\nprotocol = http\nhost = {host}\ntoken = {token}\n")
    return path


def test_flags_beat_environment_beat_config_file(tmp_path):
    write_cfg(tmp_path / "neurodata.cfg")
    env = {"NDEX_URL": "http://127.0.0.4:1", "NDEX_TOKEN": "envtoken"}
    remote = discover(url="http://127.0.0.5:2", token=TOKEN, environ=env, cwd=tmp_path, home=tmp_path)
    assert (remote.url, remote.token) == ("http://127.0.0.5:2", TOKEN)
    remote = discover(environ=env, cwd=tmp_path, home=tmp_path)
    assert (remote.url, remote.token) == ("http://127.0.0.4:1", "envtoken")
    remote = discover(environ={}, cwd=tmp_path, home=tmp_path)
    assert (remote.url, remote.token) == ("http://127.0.0.3:8000", "filetoken")


def test_intern_variables_boss_token_and_intern_cfg(tmp_path):
    env = {"INTERN_PROTOCOL": "http", "INTERN_HOST": "127.0.0.6:9", "INTERN_TOKEN": "it"}
    assert discover(environ=env, cwd=tmp_path, home=tmp_path).url == "http://127.0.0.6:9"
    assert discover(environ={"BOSS_TOKEN": "bt"}, cwd=tmp_path, home=tmp_path).token == "bt"
    write_cfg(tmp_path / "home" / ".intern" / "intern.cfg", host="127.0.0.7:1", token="x")
    assert discover(environ={}, cwd=tmp_path, home=tmp_path / "home").url == "http://127.0.0.7:1"


def test_explicit_config_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        discover(config_file=tmp_path / "nope.cfg", environ={}, cwd=tmp_path, home=tmp_path)
    cfg = write_cfg(tmp_path / "my.cfg", token="mine")
    assert discover(config_file=cfg, environ={}, cwd=tmp_path, home=tmp_path).token == "mine"


def test_missing_token_is_one_line_naming_every_place(tmp_path):
    with pytest.raises(ConfigError) as info:
        discover(environ={}, cwd=tmp_path, home=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    for place in ("--token", "NDEX_TOKEN", "INTERN_TOKEN", "BOSS_TOKEN", "neurodata.cfg", "intern.cfg"):
        assert place in message


def test_token_never_in_repr(tmp_path):
    remote = discover(token=TOKEN, environ={}, cwd=tmp_path, home=tmp_path)
    assert TOKEN not in repr(remote) and TOKEN not in remote.origin


def test_bad_url_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="http"):
        discover(url="ftp://127.0.0.1", token="t", environ={}, cwd=tmp_path, home=tmp_path)


def test_host_without_protocol_is_one_line_naming_file_and_key(tmp_path):
    cfg = tmp_path / "neurodata.cfg"
    cfg.write_text("[Default]\nhost = 127.0.0.3:8000\ntoken = filetoken\n")
    with pytest.raises(ConfigError) as info:
        discover(environ={}, cwd=tmp_path, home=tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(cfg) in message and "protocol" in message
