"""Seeding the load test's database from the fixtures: both fixture tenants (policy,
retailers, share rules), members from the fixture generator (`python -m fixtures.generate
members`), and API keys per role. Opening balances then arrive through the HTTP API as an
ordinary report (see loadtests/reports.opening_report), by `python -m loadtests`."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT

TENANT_FILES = {"us-cashback": "fixtures/tenants/us-cashback.toml",
                "jp-points": "fixtures/tenants/jp-points.json"}
ROLES = ("uploader", "operator", "approver", "admin")
MEMBER_CHUNK = 100_000


def _member_chunks(path: Path, rows: int = MEMBER_CHUNK):
    """The members CSV in pieces of `rows` rows, each with the header (in file order, so a
    referrer is always imported before the friends it referred)."""
    with path.open("rb") as f:
        header = f.readline()
        chunk = []
        for line in f:
            chunk.append(line)
            if len(chunk) >= rows:
                yield header + b"".join(chunk)
                chunk = []
        if chunk:
            yield header + b"".join(chunk)


def seed(url: str, members: dict[str, int], workdir: Path, log=print) -> dict:
    """Create the schema and both tenants; returns {tenant: {role: key}}."""
    from sqlalchemy import text

    from settlement.access.service import create_key
    from settlement.catalog.service import parse_member_file, upsert_members, upsert_retailer
    from settlement.commissions.rules import RuleInput, create_rule
    from settlement.db import make_engine, tenant_session
    from settlement.migrate import upgrade
    from settlement.tenants.policy import load_policy
    from settlement.tenants.service import apply_policy

    upgrade(url)
    engine = make_engine(url)
    keys: dict[str, dict[str, str]] = {}
    for slug, count in members.items():
        started = time.perf_counter()
        policy = load_policy(ROOT / TENANT_FILES[slug])
        with tenant_session(engine) as session:
            tenant, _ = apply_policy(session, policy)
            tenant_id = tenant.id
            session.commit()
        with tenant_session(engine, tenant_id) as session:
            for r in json.loads((ROOT / f"fixtures/{slug}/retailers.json").read_text()):
                upsert_retailer(session, tenant_id, r["slug"], r["name"], r.get("category"),
                                r.get("network_ids", {}))
            for r in json.loads((ROOT / f"fixtures/{slug}/share_rules.json").read_text()):
                create_rule(session, tenant_id, policy.minor_digits, RuleInput(
                    r.get("retailer"), r.get("category"), r["kind"], r.get("rate"),
                    r.get("amount"),
                    dt.date.fromisoformat(r["valid_from"]) if r.get("valid_from") else None,
                    dt.date.fromisoformat(r["valid_to"]) if r.get("valid_to") else None,
                    r.get("priority", 0), r.get("category_only", False)))
            keys[slug] = {role: create_key(session, tenant_id, role, f"loadtest {role}")
                          for role in ROLES}
            session.commit()
        path = workdir / f"members-{slug}.csv"
        subprocess.run([sys.executable, "-m", "fixtures.generate", "members", "--count",
                        str(count), "--tenant", slug, "--out", str(path)], check=True, cwd=ROOT)
        for n, body in enumerate(_member_chunks(path), start=1):
            chunk_started = time.perf_counter()
            batch = parse_member_file(body, "csv", dt.date(2026, 12, 31))
            if batch.errors:
                raise RuntimeError(f"members of {slug}: {batch.errors[:3]}")
            with tenant_session(engine, tenant_id) as session:
                upsert_members(session, tenant_id, policy.currency, batch, "loadtest seed")
                session.commit()
            with engine.connect() as conn:  # autovacuum's part (it may be off: see __main__)
                conn.execute(text("ANALYZE members"))
                conn.commit()
            if count > MEMBER_CHUNK:  # a long seeding says how it goes (linear or not)
                took = time.perf_counter() - chunk_started
                log(f"    {slug}: members {(n - 1) * MEMBER_CHUNK + 1:,}-"
                    f"{min(n * MEMBER_CHUNK, count):,} in {took:.1f} s")
        path.unlink()
        log(f"  {slug}: {count:,} members, retailers, share rules and keys "
            f"({time.perf_counter() - started:.1f} s)")
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    engine.dispose()
    return keys
