"""Reference data: retailers (with the ids networks know them by) and members."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from settlement import jsonsafe
from settlement.commissions.lifecycle import attach_unattributed
from settlement.models import Member, Retailer, RetailerNetworkId
from settlement.tenants.policy import MAX_HOLD_DAYS
from settlement.referrals import service as referrals
from settlement.reports.formats.base import LineError
from settlement.tenants.policy import PAYOUT_METHODS

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
EXTERNAL_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
NETWORKS = ("cj", "impact", "awin", "rakuten")

MEMBER_FIELDS = ("external_id", "name", "email", "joined_at", "referred_by", "address_line1",
                 "address_line2", "city", "region", "postal_code", "country", "payout_method",
                 "paypal_email", "amex_account", "amex_card", "bilt_account", "bilt_tier")
MEMBER_LIMITS = {"name": 200, "email": 320, "address_line1": 200, "address_line2": 200,
                 "city": 100, "region": 100, "postal_code": 20, "country": 2,
                 "paypal_email": 320, "amex_account": 64, "amex_card": 32,
                 "bilt_account": 64, "bilt_tier": 16}
BILT_TIERS = ("blue", "silver", "gold", "platinum")


class CatalogError(ValueError):
    def __init__(self, errors: list[LineError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def upsert_retailer(session: Session, tenant_id: int, slug: str, name: str,
                    category: str | None, network_ids: dict[str, str], *,
                    confirm_after_days: int | None = None) -> tuple[Retailer, bool]:
    """`confirm_after_days`: the retailer's own holding period for lines without a network
    status (commissions/holds.py), overriding the network's; None: the network's."""
    problems = []
    if confirm_after_days is not None and not 0 <= confirm_after_days <= MAX_HOLD_DAYS:
        problems.append(LineError(None, "confirm_after_days", "out_of_range",
                                  f"a holding period is 0 to {MAX_HOLD_DAYS} days"))
    if not SLUG.match(slug):
        problems.append(LineError(None, "slug", "invalid_slug",
                                  "a slug is lowercase letters, digits and dashes"))
    for network, external in network_ids.items():
        if network not in NETWORKS:
            problems.append(LineError(None, f"network_ids.{network}", "unknown_network",
                                      f"networks are {', '.join(NETWORKS)}"))
        elif not EXTERNAL_ID.match(external):
            problems.append(LineError(None, f"network_ids.{network}", "invalid_id",
                                      "an advertiser id is 1-128 printable characters"))
    if problems:
        raise CatalogError(problems)
    retailer = session.scalar(select(Retailer).where(Retailer.tenant_id == tenant_id,
                                                     Retailer.slug == slug))
    created = retailer is None
    if created:
        retailer = Retailer(tenant_id=tenant_id, slug=slug, name=name,
                            category=category.lower() if category else None)
        session.add(retailer)
        session.flush()
    else:
        retailer.name, retailer.category = name, category.lower() if category else None
    retailer.confirm_after_days = confirm_after_days
    for network, external in network_ids.items():
        taken = session.scalar(select(RetailerNetworkId.retailer_id).where(
            RetailerNetworkId.tenant_id == tenant_id, RetailerNetworkId.source == network,
            RetailerNetworkId.external_id == external))
        if taken is not None and taken != retailer.id:
            raise CatalogError([LineError(None, f"network_ids.{network}", "id_taken",
                                          f"{network} id {external} belongs to another retailer")])
    session.execute(delete(RetailerNetworkId).where(
        RetailerNetworkId.tenant_id == tenant_id, RetailerNetworkId.retailer_id == retailer.id))
    if network_ids:
        session.execute(RetailerNetworkId.__table__.insert(), [
            {"tenant_id": tenant_id, "source": n, "external_id": e, "retailer_id": retailer.id}
            for n, e in network_ids.items()])
    session.flush()
    return retailer, created


def network_ids_of(session: Session, tenant_id: int, retailer_id: int) -> dict[str, str]:
    rows = session.execute(select(RetailerNetworkId.source, RetailerNetworkId.external_id).where(
        RetailerNetworkId.tenant_id == tenant_id, RetailerNetworkId.retailer_id == retailer_id))
    return dict(rows.all())


@dataclass
class MemberBatch:
    """Checked member records, and every problem found, by line."""
    records: list[dict] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def check_member(line: int | None, raw: dict, batch: MemberBatch, today: dt.date) -> None:
    errors: list[LineError] = []
    unknown = [k for k in raw if k not in MEMBER_FIELDS]
    if unknown:
        errors.append(LineError(line, unknown[0], "unknown_field",
                                f"unknown field(s) {', '.join(map(repr, unknown[:5]))}"))
    record: dict = {}
    # Only the fields given: an import without a column leaves that column as it is.
    for name in (n for n in MEMBER_FIELDS if n in raw):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(LineError(line, name, "invalid_type", f"{name} must be a string"))
            continue
        value = (value or "").strip() or None
        if value and "\x00" in value:
            errors.append(LineError(line, name, "nul_byte", f"{name} contains a NUL byte"))
            continue
        limit = MEMBER_LIMITS.get(name)
        if value and limit and len(value) > limit:
            errors.append(LineError(line, name, "too_long", f"{name} is over {limit} characters"))
            continue
        record[name] = value
    external = record.get("external_id")
    if not external or not EXTERNAL_ID.match(external):
        errors.append(LineError(line, "external_id", "invalid_id",
                                "external_id is 1-128 printable characters without spaces"))
    if record.get("referred_by") and record["referred_by"] == external:
        errors.append(LineError(line, "referred_by", "self_referral",
                                "a member cannot refer themselves"))
    if record.get("joined_at"):
        try:
            raw = record["joined_at"]
            record["joined_at"] = (dt.date.fromisoformat(raw) if len(raw) == 10 else
                                   dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).date())
            if record["joined_at"] > today:
                errors.append(LineError(line, "joined_at", "future_date",
                                        "joined_at is in the future"))
        except ValueError:
            errors.append(LineError(line, "joined_at", "invalid_date",
                                    "joined_at is not a date like 2026-01-31"))
    method = record.get("payout_method")
    if method and method not in PAYOUT_METHODS:
        errors.append(LineError(line, "payout_method", "unknown_method",
                                f"payout_method is one of {', '.join(PAYOUT_METHODS)}"))
    for name in ("email", "paypal_email"):
        if record.get(name) and not EMAIL.match(record[name]):
            errors.append(LineError(line, name, "invalid_email", f"{name} is not an address"))
    if record.get("bilt_tier") and record["bilt_tier"].lower() not in BILT_TIERS:
        errors.append(LineError(line, "bilt_tier", "unknown_tier",
                                f"bilt_tier is one of {', '.join(BILT_TIERS)}"))
    for name in ("amex_card", "bilt_tier"):
        if record.get(name):
            record[name] = record[name].lower()
    if record.get("country"):
        record["country"] = record["country"].upper()
    if errors:
        batch.errors.extend(errors)
    else:
        record["_line"] = line
        batch.records.append(record)


def upsert_members(session: Session, tenant_id: int, currency: str, batch: MemberBatch,
                   cause: str) -> dict[str, int]:
    """Insert new members and update known ones (the fields given), then attach the lines
    that arrived before them. The batch must be free of errors."""
    seen: dict[str, int | None] = {}
    for record in batch.records:
        if record["external_id"] in seen:
            raise CatalogError([LineError(record["_line"], "external_id", "duplicate_member",
                                          f"{record['external_id']} appears twice (line "
                                          f"{seen[record['external_id']]} too)")])
        seen[record["external_id"]] = record["_line"]
    existing: dict[str, Member] = {}  # loaded in batches: no query per member below
    ids = list(seen)
    for start in range(0, len(ids), 5000):
        existing.update((m.external_id, m) for m in session.scalars(select(Member).where(
            Member.tenant_id == tenant_id, Member.external_id.in_(ids[start:start + 5000]))))
    fresh = [{name: r.get(name) for name in MEMBER_FIELDS} | {"tenant_id": tenant_id}
             for r in batch.records if r["external_id"] not in existing]
    if fresh:
        for start in range(0, len(fresh), 5000):
            session.execute(Member.__table__.insert(), fresh[start:start + 5000])
    changed = 0
    for record in batch.records:
        member = existing.get(record["external_id"])
        if member is None:
            continue
        values = {k: v for k, v in record.items() if k not in ("_line", "external_id")}
        if any(getattr(member, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(member, k, v)
            member.updated_at = func.now()
            changed += 1
    session.flush()
    attach_unattributed(session, tenant_id, currency, cause)
    referrals.members_changed(session, tenant_id, seen)
    return {"created": len(fresh), "updated": changed,
            "unchanged": len(batch.records) - len(fresh) - changed}


def parse_member_file(body: bytes, media: str, today: dt.date) -> MemberBatch:
    """A members import (CSV with MEMBER_FIELDS as header, or NDJSON)."""
    batch = MemberBatch()
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        batch.errors.append(LineError(None, None, "invalid_utf8",
                                      f"byte {exc.start + 1} of the body is not UTF-8"))
        return batch
    if media == "csv":
        reader = csv.DictReader(io.StringIO(decoded, newline=""))
        header = reader.fieldnames or []
        unknown = [h for h in header if h not in MEMBER_FIELDS]
        if "external_id" not in header or unknown:
            batch.errors.append(LineError(1, unknown[0] if unknown else "external_id",
                                          "invalid_header",
                                          f"the header names columns of {', '.join(MEMBER_FIELDS)}"
                                          " and must include external_id"))
            return batch
        for row in reader:
            check_member(reader.line_num, {k: v for k, v in row.items() if k is not None}, batch,
                         today)
        return batch
    for number, raw in enumerate(decoded.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = jsonsafe.loads(raw)
        except jsonsafe.JsonRefused as exc:
            batch.errors.append(LineError(number, None, exc.code, str(exc)))
            continue
        if not isinstance(record, dict):
            batch.errors.append(LineError(number, None, "invalid_record",
                                          "each line is a JSON object"))
            continue
        check_member(number, record, batch, today)
    return batch


def member_by_external_id(session: Session, tenant_id: int, external_id: str) -> Member | None:
    return session.scalar(select(Member).where(Member.tenant_id == tenant_id,
                                               Member.external_id == external_id))
