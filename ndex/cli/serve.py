"""`ndex serve`: run the BOSS-v1-compatible server on a data directory (SQLite + zarr store by default)."""
from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import socket
import sys

from ndex.cli.common import add_logging_flags, add_renamed_flag, run_guarded, setup_logging
from ndex.errors import UsageError
from ndex.server.settings import ServerSettings, help_of

DEFAULTS = ServerSettings()
# settings whose flag is spelled like the setting (type, default and help from ServerSettings), by topic
STORAGE = ("fsync",)
DOWNSAMPLING = ("downsample_workers", "job_lease_seconds", "downsample_max_voxels")
LIMITS = ("quota_per_day", "cutout_memory_mb", "request_timeout", "client_timeout")
WEB = ("cors_origins", "viewer_port")
COMPATIBILITY = ("allow_sourceless_annotations",)
TUNABLES = STORAGE + DOWNSAMPLING + LIMITS + WEB + COMPATIBILITY
RENAMED = {"--allow-sourceless-annotations": "--allow_sourceless_annotations",  # ndex 2.0 spellings, deprecated
           "--downsample-workers": "--downsample_workers"}
METAVARS = {"downsample_max_voxels": "N", "quota_per_day": "BYTES"}
SHUTDOWN_SECONDS = 5  # after SIGTERM, requests still running are cancelled after this long


def configure(parser: argparse.ArgumentParser) -> None:
    storage = parser.add_argument_group("data and storage")
    storage.add_argument("--data", default=DEFAULTS.data_dir, help=help_of("data_dir"))
    storage.add_argument("--db", default="", help=help_of("db_url"))
    storage.add_argument("--store", default="", help=help_of("store_url"))
    add_settings(storage, STORAGE)
    network = parser.add_argument_group("listening")
    network.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 = every interface)")
    network.add_argument("--port", type=port_number, default=8080, help="TCP port to listen on, 1-65535")
    network.add_argument("--workers", type=int, default=1,
                         help="server processes (more than 1 needs --db postgresql://...)")
    network.add_argument("--ssl_certfile", default="", help="PEM certificate: serve HTTPS (neuroglancer's boss:// "
                                                            "datasource refuses plain http)")
    network.add_argument("--ssl_keyfile", default="", help="PEM private key of --ssl_certfile")
    network.add_argument("--access_log", action="store_true",
                         help="log every request (off by default: a multi-day ingest makes millions of them)")
    add_settings(parser.add_argument_group("downsampling"), DOWNSAMPLING)
    add_settings(parser.add_argument_group("limits"), LIMITS)
    add_settings(parser.add_argument_group("browsers and the viewer"), WEB)
    add_settings(parser.add_argument_group("BOSS compatibility"), COMPATIBILITY)
    for old, new in RENAMED.items():
        add_renamed_flag(parser, old, new)
    add_logging_flags(parser)


def add_settings(group: argparse._ArgumentGroup, names: tuple[str, ...]) -> None:
    """One flag per setting, spelled like it: type, default and help come from ServerSettings."""
    types = {f.name: str(f.type) for f in dataclasses.fields(DEFAULTS)}
    for name in names:
        if types[name] == "bool":
            group.add_argument(f"--{name}", action="store_true", help=help_of(name))
            continue
        group.add_argument(f"--{name}", type={"int": int, "float": float, "str": str}[types[name]],
                           default=getattr(DEFAULTS, name), metavar=METAVARS.get(name), help=help_of(name))


def port_number(text: str) -> int:
    """argparse type of --port: a TCP port a server can listen on."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: give a number from 1 to 65535")
    return port


def check_can_listen(host: str, port: int) -> None:
    """UsageError now if host:port cannot be listened on (in use, not ours), before --data is touched.
    SO_REUSEADDR as uvicorn sets it, so a port whose last connections linger in TIME_WAIT passes."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        why = "it is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise UsageError(f"cannot listen on {host}:{port} ({why}): pass another --port "
                         "(or stop what is listening there)") from None


def settings_from(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(data_dir=args.data, db_url=args.db, store_url=args.store, viewer_bind=args.host,
                          **{name: getattr(args, name) for name in TUNABLES})


def connection_limits(settings: ServerSettings) -> dict:
    """uvicorn's own limits: idle connections and unfinished headers are closed after --client_timeout
    (slow_clients), and SIGTERM stops the server within SHUTDOWN_SECONDS even with requests in flight."""
    if settings.client_timeout <= 0:
        return {"timeout_graceful_shutdown": SHUTDOWN_SECONDS}
    return {"timeout_keep_alive": settings.client_timeout, "timeout_graceful_shutdown": SHUTDOWN_SECONDS,
            "http": "ndex.server.slow_clients:SlowClientProtocol"}


def tls_options(args: argparse.Namespace) -> dict[str, str]:
    """uvicorn's TLS arguments; both files or neither, and each must be readable."""
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise UsageError("--ssl_certfile and --ssl_keyfile go together: pass both PEM files, or neither for http")
    for flag, path in (("--ssl_certfile", args.ssl_certfile), ("--ssl_keyfile", args.ssl_keyfile)):
        if path and not os.path.isfile(path):
            raise UsageError(f"{flag} {path}: no such file; pass a PEM file")
    return {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile} if args.ssl_certfile else {}


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)
    return run_guarded(lambda: serve(args))


def check_store(settings: ServerSettings) -> None:
    from ndex.server.migrate import upgrade_store
    from ndex.server.volumes import VolumeStore

    store = VolumeStore(settings.volume_url)
    try:
        upgrade_store(store, upgrade_hint=settings.upgrade_hint)
    finally:
        store.close()


def serve(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from ndex.server.arrays import local_root
    from ndex.server.db import Database, lock_server_dirs, private_files

    settings = settings_from(args)
    tls = tls_options(args)
    if args.workers > 1 and args.viewer_port:
        raise UsageError("--viewer_port needs --workers 1: each worker process runs its own viewer server, on a "
                         "free port; drop --viewer_port")
    if args.workers > 1 and settings.sqlite:
        raise UsageError(f"--workers {args.workers} needs a server database: SQLite allows one server process; "
                         "pass --db postgresql://... or drop --workers")
    if args.job_lease_seconds <= 0:
        raise UsageError(f"--job_lease_seconds {args.job_lease_seconds:g} must be positive: 30 suits most servers")
    check_can_listen(args.host, args.port)  # before anything is created in --data
    locks = lock_server_dirs(settings.data_dir, local_root(settings.volume_url)) if settings.sqlite else ExitStack()
    with locks:
        private_files()  # after the locks: a refused start leaves the caller's umask alone
        return _serve(args, settings, tls, Database(settings.database_url, upgrade_hint=settings.upgrade_hint))


def warn_shared(settings: ServerSettings) -> None:
    """Name what other users may read: a data directory made by an older ndex or by hand."""
    from ndex.server.arrays import local_root
    from ndex.server.db import shared_modes, sqlite_path

    private = (settings.data_dir, local_root(settings.volume_url) or "", sqlite_path(settings.database_url) or "")
    for path, mode in shared_modes(*private):
        print(f"ndex serve: warning: {path} is open to other users (mode {mode:o}): chmod go= {path}",
              file=sys.stderr)


def _serve(args: argparse.Namespace, settings: ServerSettings, tls: dict, db) -> int:
    import uvicorn

    from ndex.server.app import SETTINGS_ENV, create_app
    from ndex.server.users import ensure_first_admin

    try:
        check_store(settings)  # before the banner: a refused store must not look like a started server
        warn_shared(settings)  # once the data is known to be servable
        with db.begin() as conn:
            first = ensure_first_admin(conn)
        if first:
            print(f"created user 'admin'; get its token with: ndex token create --data {settings.data_dir} "
                  "--user admin --role admin", file=sys.stderr)
        home = f"{'https' if tls else 'http'}://{args.host}:{args.port}/"
        print(f"ndex serve: home page {home} (data {settings.data_dir}, API docs at {home}docs)", file=sys.stderr)
        common = {"host": args.host, "port": args.port, "log_level": "warning" if args.quiet else "info",
                  "access_log": args.access_log, **connection_limits(settings), **tls}
        if args.workers > 1:
            os.environ[SETTINGS_ENV] = settings.to_json()
            uvicorn.run("ndex.server.app:app_from_env", factory=True, workers=args.workers, **common)
        else:
            # uvicorn picks httptools and uvloop when installed (about twice h11's cutout throughput)
            uvicorn.run(create_app(settings, db=db), **common)
    finally:
        db.close()
    logging.getLogger(__name__).info("ndex serve stopped")
    return 0
