"""postings trigger: check what each statement adds, not the entries' whole history

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 04:30:00
"""
from alembic import op

from settlement.migrations.ledger_rules import replace_ledger_functions


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The statement trigger summed each touched entry's postings from the table; on a table
    # grown in the same transaction its plan could loop over every posting per entry (85 s
    # for the referral entries of a million-line report). The rule it keeps is the same.
    replace_ledger_functions(op.get_bind())


def downgrade() -> None:
    pass  # the new body enforces the same rule; nothing to undo
