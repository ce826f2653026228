"""postings: the member index keyed by (tenant_id, member_id) only

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 07:45:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every reader of a member's postings (balance, statement, planning) reads all of them
    # and groups by account: the account in the key filtered nothing, and every posting
    # paid for it. Measured on 100,000 postings into a 3M-row table, both indexes freshly
    # built: 499 ms -> 447 ms.
    op.drop_index("ix_postings_member", table_name="postings")
    op.create_index("ix_postings_member", "postings", ["tenant_id", "member_id"])


def downgrade() -> None:
    op.drop_index("ix_postings_member", table_name="postings")
    op.create_index("ix_postings_member", "postings", ["tenant_id", "member_id", "account"])
