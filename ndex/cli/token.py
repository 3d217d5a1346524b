"""`ndex token create|list|revoke`: API tokens of an `ndex serve` data directory.

`create` prints only the new token on stdout (scripts take the last line); tokens are stored hashed,
so a lost token cannot be shown again: create a new one and revoke the old.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ndex.cli.common import run_guarded
from ndex.errors import UsageError
from ndex.server.settings import ServerSettings, help_of
from ndex.server.users import CLI_ROLES


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a token (and the user, if new); prints the token")
    create.add_argument("--user", required=True, help="user name (created with --role if it does not exist)")
    create.add_argument("--role", choices=CLI_ROLES, default=None,
                        help="role of the user: admin, resource-manager (may create resources) or user "
                             "(default for a new user: user)")
    listing = sub.add_parser("list", help="list users, roles and token ids (never the tokens)")
    revoke = sub.add_parser("revoke", help="revoke one token (--id) or every token of a user (--user)")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, help="token id as shown by `ndex token list`")
    which.add_argument("--user", help="revoke every token of this user")
    for p in (create, listing, revoke):
        p.add_argument("--data", default=ServerSettings().data_dir, help=help_of("data_dir"))
        p.add_argument("--db", default="", help=help_of("db_url"))


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: ACTIONS[args.token_command](args))


def _database(args: argparse.Namespace, *, create: bool = False):
    """The server's database; unless `create`, a --data directory without one is an error, not a new one."""
    from ndex.server.db import Database

    settings = ServerSettings(data_dir=args.data, db_url=args.db)
    path = Path(settings.database_url.split("///", 1)[-1]) if settings.sqlite else None
    if not create and path is not None and not path.is_file():
        raise UsageError(f"--data {args.data} holds no ndex server (no {path.name} in it): check --data, "
                         "or create the first token with `ndex token create`")
    return Database(settings.database_url, upgrade_hint=settings.upgrade_hint)


def create(args: argparse.Namespace) -> int:
    from ndex.server.users import issue_token

    db = _database(args, create=True)
    try:
        with db.begin() as conn:
            before = cli_role(conn, args.user)
            token = issue_token(conn, args.user, args.role)
            after = cli_role(conn, args.user)
    finally:
        db.close()
    if before is not None and before != after:
        print(f"user {args.user!r}: role changed from {before} to {after}", file=sys.stderr)
    elif before is not None and args.role is not None:
        print(f"user {args.user!r} already has role {after}: unchanged", file=sys.stderr)
    print(token)
    return 0


def cli_role(conn, username: str) -> str | None:
    """The user's role as `--role` names it ("user" for none); None for no such user."""
    from ndex.server.users import CLI_ROLES, roles_of, user_id

    uid = user_id(conn, username)
    if uid is None:
        return None
    return next((r for r in CLI_ROLES if r in roles_of(conn, uid)), "user")


def list_tokens(args: argparse.Namespace) -> int:
    from ndex.server.users import list_tokens as tokens_of
    from ndex.server.users import list_users

    db = _database(args)
    try:
        with db.begin() as conn:
            people, tokens = list_users(conn), tokens_of(conn)
    finally:
        db.close()
    print("users:")
    for name, roles in people:
        print(f"  {name:24s} {', '.join(roles) or 'user'}")
    print("tokens:")
    for t in tokens:
        when = dt.datetime.fromtimestamp(t.created).isoformat(timespec="seconds")
        print(f"  id {t.id:<6d} {t.username:24s} created {when}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    from ndex.server.users import revoke_tokens

    db = _database(args)
    try:
        with db.begin() as conn:
            n = revoke_tokens(conn, token_id=args.id, username=args.user)
    finally:
        db.close()
    if n == 0:
        raise UsageError("no such token: `ndex token list` shows the token ids")
    print(f"revoked {n} token(s); a running server forgets them within a few seconds")
    return 0


ACTIONS = {"create": create, "list": list_tokens, "revoke": revoke}
