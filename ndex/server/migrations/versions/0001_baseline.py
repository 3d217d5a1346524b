"""baseline: the catalog as every release before schema versions wrote it (9c37804, `ndex serve`'s first)

Written out table by table, not taken from ndex.server.schema, so that it stays what those releases
created when schema.py changes. A catalog of such a release has these tables and no alembic_version:
ndex.server.migrate recognises it and records this revision without running it.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
ndex_quick = True

NAME = 255


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(NAME), nullable=False, unique=True),
        sa.Column("first_name", sa.String(NAME), nullable=False),
        sa.Column("last_name", sa.String(NAME), nullable=False),
        sa.Column("email", sa.String(NAME), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False, unique=True),
        sa.Column("owner", sa.String(NAME), nullable=False),
    )
    for name in ("group_members", "group_maintainers"):
        op.create_table(
            name,
            sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id"), primary_key=True),
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        )
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("creator", sa.String(NAME), nullable=False),
    )
    op.create_table(
        "frames",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(NAME), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        *(sa.Column(f"{a}_{b}", sa.Integer, nullable=False) for a in "xyz" for b in ("start", "stop")),
        *(sa.Column(f"{a}_voxel_size", sa.Float, nullable=False) for a in "xyz"),
        sa.Column("voxel_unit", sa.String(32), nullable=False),
        sa.Column("creator", sa.String(NAME), nullable=False),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id"), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("frame_id", sa.Integer, sa.ForeignKey("frames.id"), nullable=False),
        sa.Column("num_hierarchy_levels", sa.Integer, nullable=False),
        sa.Column("hierarchy_method", sa.String(32), nullable=False),
        sa.Column("num_time_samples", sa.Integer, nullable=False),
        sa.Column("time_step", sa.Integer, nullable=True),
        sa.Column("time_step_unit", sa.String(32), nullable=True),
        sa.Column("creator", sa.String(NAME), nullable=False),
        sa.UniqueConstraint("collection_id", "name"),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("datatype", sa.String(16), nullable=False),
        sa.Column("default_time_sample", sa.Integer, nullable=False),
        sa.Column("base_resolution", sa.Integer, nullable=False),
        sa.Column("downsample_status", sa.String(32), nullable=False),
        sa.Column("storage_type", sa.String(16), nullable=False),
        sa.Column("bucket", sa.String(NAME), nullable=True),
        sa.Column("cv_path", sa.String(NAME), nullable=True),
        sa.Column("creator", sa.String(NAME), nullable=False),
        sa.Column("next_id", sa.Integer, nullable=False),
        sa.UniqueConstraint("experiment_id", "name"),
    )
    op.create_table(
        "channel_links",
        sa.Column("channel_id", sa.Integer, sa.ForeignKey("channels.id"), primary_key=True),
        sa.Column("other_id", sa.Integer, sa.ForeignKey("channels.id"), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
    )
    op.create_table(
        "permissions",
        sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id"), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("obj_id", sa.Integer, primary_key=True),
        sa.Column("perm", sa.String(32), primary_key=True),
    )
    op.create_table(
        "meta",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("obj_id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(NAME), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for name in ("meta", "permissions", "channel_links", "channels", "experiments", "frames", "collections",
                 "group_maintainers", "group_members", "groups", "tokens", "user_roles", "users"):
        op.drop_table(name)
