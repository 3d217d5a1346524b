"""`ndex serve` and `ndex token` refuse what cannot work with one line, before anything is created."""
from __future__ import annotations

import argparse
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


def serve_args(*argv: str):
    from ndex.cli.main import build_parser
    return build_parser("serve").parse_args(["serve", *argv])


def test_every_serve_flag_is_spelled_with_underscores_and_the_old_spellings_still_work_with_one_warning(capsys):
    from ndex.cli.main import build_parser
    from ndex.cli.serve import settings_from

    help_text = build_parser("serve")._subparsers._group_actions[0].choices["serve"].format_help()
    assert "--allow_sourceless_annotations" in help_text and "--downsample_workers" in help_text
    assert "--allow-sourceless" not in help_text and "--downsample-workers" not in help_text
    new = settings_from(serve_args("--allow_sourceless_annotations", "--downsample_workers", "3"))
    assert capsys.readouterr().err == ""
    old = settings_from(serve_args("--allow-sourceless-annotations", "--downsample-workers", "2",
                                   "--downsample-workers", "3"))
    assert old == new and new.allow_sourceless_annotations and new.downsample_workers == 3
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == ["warning: --allow-sourceless-annotations is deprecated and will go: spell it "
                        "--allow_sourceless_annotations",
                        "warning: --downsample-workers is deprecated and will go: spell it --downsample_workers"]
    defaults = settings_from(serve_args())
    assert not defaults.allow_sourceless_annotations and defaults.downsample_workers == 1


def test_a_mistyped_serve_flag_suggests_the_underscore_spelling(capsys):
    with pytest.raises(SystemExit):
        serve_args("--downsample-wrkers", "2")
    assert "did you mean --downsample_workers?" in capsys.readouterr().err


def test_serve_help_puts_every_flag_in_a_group_of_its_topic():
    from ndex.cli.main import build_parser

    parser = build_parser("serve")._subparsers._group_actions[0].choices["serve"]
    loose = [a.option_strings for g in parser._action_groups if g.title == "options" for a in g._group_actions
             if a.help is not argparse.SUPPRESS and "--help" not in a.option_strings]
    assert loose == []
    titles = [g.title for g in parser._action_groups if g._group_actions]
    assert {"data and storage", "listening", "downsampling", "limits", "logging"} <= set(titles)
