"""users' own groups bound to their user id; channel voxels under a store key never reused; SQLite ids never reused

* `groups.personal_of` (the user whose own group it is). A group `<user>-primary` becomes that user's own
  group; anyone else in it (a name taken before such names were reserved) is removed from it, and the user
  is its member and maintainer. A `-primary` group of no user stays unbound: an admin deletes it.
* `channels.store_key`: existing channels keep their arrays where they are, under `ch<id>`, the name the
  releases before this one used; new channels get random keys.
* SQLite tables with ids get AUTOINCREMENT (rebuilt in batch mode), so a deleted last row's id is not handed
  out again; PostgreSQL sequences never go back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
ndex_quick = True  # catalog tables are small: a few thousand rows at most

SUFFIX = "-primary"
ID_TABLES = ("users", "tokens", "groups", "collections", "frames", "experiments", "channels")


def _batch(table: str):
    """A batch alteration that also rebuilds the table with AUTOINCREMENT on SQLite."""
    if op.get_bind().dialect.name == "sqlite":
        return op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True})
    return op.batch_alter_table(table)


def upgrade() -> None:
    with _batch("groups") as batch:
        batch.add_column(sa.Column("personal_of", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_groups_personal_of_users", "users", ["personal_of"], ["id"])
        batch.create_unique_constraint("uq_groups_personal_of", ["personal_of"])
    _bind_personal_groups()
    op.add_column("channels", sa.Column("store_key", sa.String(64), nullable=True))
    op.execute("UPDATE channels SET store_key = 'ch' || CAST(id AS VARCHAR(20))")
    with _batch("channels") as batch:
        batch.alter_column("store_key", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_channels_store_key", ["store_key"])
    if op.get_bind().dialect.name == "sqlite":
        for table in ID_TABLES:
            if table not in ("groups", "channels"):
                with _batch(table):
                    pass


def _bind_personal_groups() -> None:
    conn = op.get_bind()
    users = sa.table("users", sa.column("id"), sa.column("username"))
    groups = sa.table("groups", sa.column("id"), sa.column("name"), sa.column("owner"), sa.column("personal_of"))
    members = sa.table("group_members", sa.column("group_id"), sa.column("user_id"))
    maintainers = sa.table("group_maintainers", sa.column("group_id"), sa.column("user_id"))
    for uid, username in conn.execute(sa.select(users.c.id, users.c.username)).all():
        gid = conn.execute(sa.select(groups.c.id).where(groups.c.name == username + SUFFIX)).scalar()  # type: ignore[operator]
        if gid is None:
            gid = conn.execute(sa.insert(groups).values(name=username + SUFFIX, owner=username, personal_of=uid)  # type: ignore[operator]
                               .returning(groups.c.id)).scalar()
        else:
            conn.execute(sa.update(groups).where(groups.c.id == gid).values(owner=username, personal_of=uid))
        for roster in (members, maintainers):
            conn.execute(sa.delete(roster).where(roster.c.group_id == gid))
            conn.execute(sa.insert(roster).values(group_id=gid, user_id=uid))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_constraint("uq_channels_store_key", type_="unique")
        batch.drop_column("store_key")
    with op.batch_alter_table("groups") as batch:
        batch.drop_constraint("uq_groups_personal_of", type_="unique")
        batch.drop_constraint("fk_groups_personal_of_users", type_="foreignkey")
        batch.drop_column("personal_of")
