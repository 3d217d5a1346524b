import argparse
import logging

import pytest

from ndex.cli.common import exit_code_for, one_line, parse_size, setup_logging
from ndex.errors import AuthError, ConfigError, RemoteUnreachable, ResourceNotFound, TransferFailed


def test_quiet_console_stays_quiet_when_a_job_log_lowers_the_ndex_logger(capsys):
    setup_logging(quiet=True)
    ndex_logger = logging.getLogger("ndex")
    old = ndex_logger.level
    ndex_logger.setLevel(logging.INFO)  # what a job log file does for itself
    try:
        logging.getLogger("ndex.transfer").info("posted block 7")
        logging.getLogger("ndex.transfer").warning("slow server")
    finally:
        ndex_logger.setLevel(old)
    err = capsys.readouterr().err
    assert "posted block 7" not in err and "slow server" in err


def test_setup_logging_twice_keeps_one_console_handler():
    setup_logging(verbose=1)
    setup_logging(verbose=1)
    consoles = [h for h in logging.getLogger().handlers if type(h).__name__ == "_ConsoleHandler"]
    assert len(consoles) == 1 and consoles[0].level == logging.INFO


def test_errors_become_one_line_with_a_hint_and_distinct_exit_codes():
    assert exit_code_for(ConfigError("no token")) == 2
    assert exit_code_for(ResourceNotFound("gone", status=404)) == 3
    assert exit_code_for(TransferFailed("2 blocks")) == 1
    line = one_line(AuthError("Invalid token.\n", status=401))
    assert "\n" not in line and line.startswith("error:") and "token" in line
    unreachable = one_line(RemoteUnreachable("GET /v1/collection/c: cannot reach 127.0.0.1:9 (refused)"))
    assert "--url" in unreachable and "re-run the same command" in unreachable


def test_every_subcommand_has_help_and_only_the_chosen_one_is_configured(capsys):
    import pytest

    from ndex.cli.main import SUBCOMMANDS, build_parser, main

    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        assert f"usage: ndex {name}" in capsys.readouterr().out
    parser = build_parser("pull")
    assert parser.parse_args(["pull", "--collection", "c"]).collection == "c"
    assert main([]) == 2


@pytest.mark.parametrize("text, size", [("8GB", 8 * 10**9), ("512MiB", 512 * 2**20), ("1e9", 10**9),
                                        ("4 mib", 4 * 2**20), ("2k", 2000)])
def test_parse_size_reads_decimal_and_binary_units(text, size):
    assert parse_size(text) == size


def test_parse_size_refuses_what_is_not_a_size():
    with pytest.raises(argparse.ArgumentTypeError, match="'8 parsecs' is not a size like 8GB or 512MiB"):
        parse_size("8 parsecs")
