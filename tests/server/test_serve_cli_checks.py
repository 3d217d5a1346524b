"""`ndex serve` and `ndex token` refuse what cannot work with one line, before anything is created."""
from __future__ import annotations

import socket

import pytest

from ndex.cli.main import main


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_an_impossible_port_is_refused(tmp_path, capsys, port):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--data", str(tmp_path / "data"), "--port", port])
    assert info.value.code == 2
    assert "is not a TCP port: give a number from 1 to 65535" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_a_port_in_use_is_refused_before_the_data_directory_is_created(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--data", str(tmp_path / "data"), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: cannot listen on 127.0.0.1:{port} (it is in use): pass another --port " \
                  "(or stop what is listening there)"
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("action", [["list"], ["revoke", "--id", "1"], ["revoke", "--user", "ann"]])
def test_token_list_and_revoke_on_a_directory_without_a_server_are_errors(tmp_path, capsys, action):
    assert main(["token", *action, "--data", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no ndex server" in err and "ndex token create" in err
    assert not (tmp_path / "nothing").exists()


def role_after(capsys, data, *role):
    assert main(["token", "create", "--data", data, "--user", "ann", *role]) == 0
    err = capsys.readouterr().err.strip()
    main(["token", "list", "--data", data])
    listing = capsys.readouterr().out
    return err, next(line.split()[1] for line in listing.splitlines() if line.strip().startswith("ann"))


def test_role_on_an_existing_user_changes_it_or_says_it_did_not(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert role_after(capsys, data, "--role", "admin") == ("", "admin")
    assert role_after(capsys, data, "--role", "user") == (
        "user 'ann': role changed from admin to user", "user")
    assert role_after(capsys, data, "--role", "resource-manager") == (
        "user 'ann': role changed from user to resource-manager", "resource-manager")
    assert role_after(capsys, data, "--role", "resource-manager") == (
        "user 'ann' already has role resource-manager: unchanged", "resource-manager")
    assert role_after(capsys, data) == ("", "resource-manager")  # no --role: a token, nothing else
