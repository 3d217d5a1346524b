"""A --db that cannot be used is one line naming the fix, never a traceback or the password."""
import pytest

from ndex.errors import UsageError
from ndex.server.db import Database


def test_unusable_database_url_is_a_usage_error_without_the_password():
    with pytest.raises(UsageError) as info:
        Database("postgresql://ndex:s3cret@127.0.0.1:9/ndex")  # no driver here, or nothing listening on port 9
    text = str(info.value)
    assert "s3cret" not in text and "--db" in text and "\n" not in text


def test_a_database_file_that_cannot_be_created_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UsageError, match="check --db|cannot"):
        Database(f"sqlite:///{blocker}/sub/ndex.sqlite")
