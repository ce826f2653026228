"""An upload is stored as sent, compressed with lz4 where PostgreSQL has it (migration
0017): pglz took four times as long to store a 100 MB report."""
from __future__ import annotations

from sqlalchemy import text

from settlement.db import engine_for


def test_report_chunks_are_compressed_with_lz4_when_the_server_has_it(pg_url):
    with engine_for(pg_url).connect() as conn:
        available = conn.execute(text(
            "SELECT 'lz4' = ANY (enumvals) FROM pg_settings "
            "WHERE name = 'default_toast_compression'")).scalar()
        method = conn.execute(text(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'report_chunks'::regclass AND attname = 'data'")).scalar()
    assert method == ("l" if available else "")
