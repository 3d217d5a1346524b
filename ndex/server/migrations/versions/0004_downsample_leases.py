"""a table of downsample job leases: which server process runs a channel's job, until when, how far

downsample_leases (channel_id primary key, owner, expires, done, total) lets several server processes
and hosts share downsample jobs (ndex.server.leases). A new, empty table: quick on any catalog. The
downgrade drops it; jobs running at that moment lose their leases and are adopted again after an upgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
ndex_quick = True


def upgrade() -> None:
    op.create_table(
        "downsample_leases",
        sa.Column("channel_id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("downsample_leases")
