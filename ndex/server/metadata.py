"""Key/value metadata on collections, experiments and channels (boss-api.md 6).

Keyed by the object's kind and id, so renames keep it; key and value travel in the query string.
"""
from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from ndex.server.auth import Identity
from ndex.server.catalog import Catalog
from ndex.server.http_errors import invalid
from ndex.server.schema import meta

NEEDED = {"GET": "read", "POST": "add", "PUT": "update", "DELETE": "delete"}


class MetadataService:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db

    def _target(self, conn, ident: Identity, method: str, path: tuple[str, ...]) -> tuple[str, int]:
        found = self.catalog.resolve(conn, *path)
        self.catalog.auth.require(ident, found.kind, found.row["id"], NEEDED[method], name="/".join(path))
        return found.kind, found.row["id"]

    def list_keys(self, ident: Identity, path: tuple[str, ...]) -> list[str]:
        with self.db.begin() as conn:
            kind, obj = self._target(conn, ident, "GET", path)
            rows = conn.execute(select(meta.c.key).where(meta.c.kind == kind, meta.c.obj_id == obj).order_by(meta.c.key))
            return [r[0] for r in rows]

    def get(self, ident: Identity, path: tuple[str, ...], key: str) -> str:
        with self.db.begin() as conn:
            kind, obj = self._target(conn, ident, "GET", path)
            value = self._value(conn, kind, obj, key)
        if value is None:
            raise invalid(f"metadata key {key!r} does not exist on {'/'.join(path)}")
        return value

    @staticmethod
    def _value(conn, kind: str, obj: int, key: str) -> str | None:
        return conn.execute(select(meta.c.value).where(meta.c.kind == kind, meta.c.obj_id == obj,
                                                       meta.c.key == key)).scalar()

    def create(self, ident: Identity, path: tuple[str, ...], key: str, value: str) -> None:
        with self.db.begin() as conn:
            kind, obj = self._target(conn, ident, "POST", path)
            if self._value(conn, kind, obj, key) is not None:
                raise invalid(f"metadata key {key!r} already exists on {'/'.join(path)}: use PUT to change it")
            conn.execute(insert(meta).values(kind=kind, obj_id=obj, key=key, value=value))

    def update(self, ident: Identity, path: tuple[str, ...], key: str, value: str) -> None:
        with self.db.begin() as conn:
            kind, obj = self._target(conn, ident, "PUT", path)
            if self._value(conn, kind, obj, key) is None:
                raise invalid(f"metadata key {key!r} does not exist on {'/'.join(path)}: use POST to create it")
            conn.execute(update(meta).where(meta.c.kind == kind, meta.c.obj_id == obj, meta.c.key == key)
                         .values(value=value))

    def delete(self, ident: Identity, path: tuple[str, ...], key: str) -> None:
        with self.db.begin() as conn:
            kind, obj = self._target(conn, ident, "DELETE", path)
            gone = conn.execute(delete(meta).where(meta.c.kind == kind, meta.c.obj_id == obj, meta.c.key == key))
            if gone.rowcount == 0:
                raise invalid(f"metadata key {key!r} does not exist on {'/'.join(path)}")
