"""frame extents and the reserve-ids counter become 64-bit: frames 2**40 voxels deep, ids past 2**31

frames.{x,y,z}_{start,stop} and channels.next_id widen from INTEGER to BIGINT. On PostgreSQL
`ALTER COLUMN ... TYPE bigint` rewrites the table under an exclusive lock; SQLite (batch mode) copies it.
Quick all the same: a catalog holds one row per frame and per channel (hundreds, not millions), and
every value an INTEGER held fits a BIGINT, so nothing is lost. The downgrade narrows them back and
fails (PostgreSQL) on a value past 2**31 - 1 rather than truncate it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
ndex_quick = True

EXTENTS = [f"{a}_{b}" for a in "xyz" for b in ("start", "stop")]


def upgrade() -> None:
    _retype(sa.Integer, sa.BigInteger)


def downgrade() -> None:
    _retype(sa.BigInteger, sa.Integer)


def _retype(old, new) -> None:
    with op.batch_alter_table("frames") as frames:
        for name in EXTENTS:
            frames.alter_column(name, existing_type=old, type_=new, existing_nullable=False)
    with op.batch_alter_table("channels") as channels:
        channels.alter_column("next_id", existing_type=old, type_=new, existing_nullable=False)
