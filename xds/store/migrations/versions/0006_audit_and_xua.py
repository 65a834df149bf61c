"""Secure node: the ATNA audit outbox and the XUA assertion replay cache.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("event_id", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("patient", sa.String(length=256), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("sent", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_outbox")),
    )
    op.create_index("ix_audit_outbox_sent_id", "audit_outbox", ["sent", "id"])
    op.create_index("ix_audit_outbox_created", "audit_outbox", ["created"])
    op.create_index("ix_audit_outbox_patient", "audit_outbox", ["patient"])
    op.create_table(
        "xua_assertion",
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xua_assertion")),
    )
    op.create_index("ix_xua_assertion_expires", "xua_assertion", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_xua_assertion_expires", table_name="xua_assertion")
    op.drop_table("xua_assertion")
    op.drop_index("ix_audit_outbox_patient", table_name="audit_outbox")
    op.drop_index("ix_audit_outbox_created", table_name="audit_outbox")
    op.drop_index("ix_audit_outbox_sent_id", table_name="audit_outbox")
    op.drop_table("audit_outbox")
