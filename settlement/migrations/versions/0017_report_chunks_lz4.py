"""report chunks compressed with lz4: an upload's bytes are stored as they come (the record
of what was sent), 1 MiB a row; PostgreSQL's default compression (pglz) took 1.5 s of the
upload of a 100 MB report, lz4 0.4 s, for 35 MB stored instead of 32 (docs/PERFORMANCE.md).

Only on PostgreSQL built with lz4 (SQLite has no such setting); rows already stored keep
their compression until rewritten, which is how PostgreSQL reads both.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 13:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.execute(sa.text(
        "SELECT 'lz4' = ANY (enumvals) FROM pg_settings "
        "WHERE name = 'default_toast_compression'")).scalar())


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE report_chunks ALTER COLUMN data SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE report_chunks ALTER COLUMN data SET COMPRESSION DEFAULT")
