"""Report bodies for the load test, in every supported format, as the networks send them.

- generic (CSV, JSON, NDJSON; also sent as multipart), us-cashback;
- CJ commission detail records (JSON envelope, NDJSON), us-cashback;
- Impact Actions (CSV export, JSON page, NDJSON), us-cashback;
- Awin transactions (JSON array, NDJSON), us-cashback;
- Rakuten Advertising Signature Orders (CSV), jp-points.

A report is a `ReportSpec` (format, media, lines, a number unique in the load test); `render(spec)`
gives the same bytes for the same spec, so a re-upload re-renders instead of keeping
megabytes around. `correction_of(spec)` is the network's own way of correcting it: the
generic update (fixtures.generate.update_chunks: confirmations, reversals, partial
returns), CJ correction records (original=false, negative deltas pointing at the original),
Impact and Awin restating the same ids with a new state or a lowered amount, Rakuten
return lines (negative Sales) for some order lines.

Lines come from a pool of (retailer, category, date, amounts, status) bodies built once per
tenant from fixtures.common's retailer economics; rendering is string formatting of
pre-rendered templates (about a microsecond a line), so the locust process spends its CPU
on requests, not on JSON.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from dataclasses import dataclass, replace
from functools import lru_cache

from fixtures.common import TENANTS, commission_of, economics
from fixtures.generate import update_chunks
from settlement.money import format_amount

FORMATS = {  # format -> (tenant, media it accepts)
    "generic": ("us-cashback", ("csv", "json", "ndjson", "multipart")),
    "cj": ("us-cashback", ("json", "ndjson")),
    "impact": ("us-cashback", ("csv", "json", "ndjson")),
    "awin": ("us-cashback", ("json", "ndjson")),
    "rakuten": ("jp-points", ("csv", "multipart")),
}
CONTENT_TYPES = {"csv": "text/csv", "json": "application/json",
                 "ndjson": "application/x-ndjson"}
POOL = 4096
START = dt.date(2026, 6, 1)
END = dt.date(2026, 11, 20)
STATUS_MIX = (("pending", 60), ("confirmed", 35), ("reversed", 5))


@dataclass(frozen=True)
class ReportSpec:
    format: str
    media: str  # csv | json | ndjson | multipart (multipart wraps the format's CSV or JSON)
    lines: int
    number: int  # unique per new report within a load test
    token: str  # unique per load test: reports of two runs never share an id
    members: int  # members are numbered 1..members
    correction: bool = False

    @property
    def series(self) -> str:
        """The prefix of this report's transaction and order ids."""
        return f"L{self.token}-{self.number}-"

    @property
    def tenant(self) -> str:
        return FORMATS[self.format][0]

    @property
    def body_media(self) -> str:
        """The media of the bytes themselves (a multipart upload carries CSV or JSON)."""
        if self.media != "multipart":
            return self.media
        return "csv" if self.format in ("generic", "rakuten", "impact") else "json"


@dataclass(frozen=True)
class Body:
    retailer: str  # our slug
    network_id: str
    advertiser: str
    category: str
    day: dt.date
    sale: int
    commission: int
    status: str


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights)[0]


@lru_cache(maxsize=None)
def pool(fmt: str) -> tuple[Body, ...]:
    """Line bodies for a format: its tenant's retailers that this network reports for
    (every retailer for generic), with the retailers' economics."""
    tenant = TENANTS[FORMATS[fmt][0]]
    rng = random.Random(f"loadtest-pool:{fmt}")
    retailers = [r for r in tenant.retailers() if fmt == "generic" or fmt in r["network_ids"]]
    digits = tenant.policy.minor_digits
    unit = 10 ** digits
    end = min(END, dt.date.today())
    days = (end - START).days + 1
    bodies = []
    for _ in range(POOL):
        r = _weighted(rng, [(r, economics(tenant.slug, r["slug"]).weight) for r in retailers])
        eco = economics(tenant.slug, r["slug"])
        category, _, rate = _weighted(rng, [(c, c[1]) for c in eco.categories])
        sale = rng.randrange(eco.sale_min * unit, eco.sale_max * unit + 1)
        bodies.append(Body(r["slug"], r["network_ids"].get(fmt, r["slug"]), r["name"],
                           category, START + dt.timedelta(days=rng.randrange(days)), sale,
                           commission_of(sale, rate), _weighted(rng, STATUS_MIX)))
    return tuple(bodies)


def _lines(spec: ReportSpec):
    """(n, member external id, body) for each line of a new report."""
    tenant = TENANTS[spec.tenant]
    rng = random.Random(f"loadtest:{spec.series}")
    bodies = pool(spec.format)
    members = rng.choices(range(1, spec.members + 1), k=spec.lines)
    chosen = rng.choices(bodies, k=spec.lines)
    for n, (m, body) in enumerate(zip(members, chosen), start=1):
        yield n, tenant.member_id(m), body


def _money(amount: int, fmt: str) -> str:
    return format_amount(amount, 0 if fmt == "rakuten" else 2)


# --- generic -----------------------------------------------------------------------------
GENERIC_COLUMNS = ("transaction_id", "order_id", "member", "retailer", "category",
                   "event_date", "sale_amount", "commission_amount", "currency", "status")


def _generic_rows(spec: ReportSpec):
    for n, member, b in _lines(spec):
        yield (f"{spec.series}T{n:07d}", f"{spec.series}O{n:07d}", member, b.retailer,
               b.category, b.day.isoformat(), _money(b.sale, "generic"),
               _money(b.commission, "generic"), "USD", b.status)


def _generic_csv(spec: ReportSpec) -> bytes:
    out = [",".join(GENERIC_COLUMNS)]
    out += [",".join(row) for row in _generic_rows(spec)]
    return ("\n".join(out) + "\n").encode()


def _generic(spec: ReportSpec) -> bytes:
    if spec.correction:
        original = _generic_csv(replace(spec, correction=False)).decode()
        update = b"".join(update_chunks(TENANTS["us-cashback"],
                                        io.StringIO(original, newline=""),
                                        seed=hash_seed(spec), fraction=0.25))
        if spec.body_media == "csv":
            return update
        rows = list(csv.DictReader(io.StringIO(update.decode(), newline="")))
        return _json_or_ndjson(rows, spec.body_media)
    if spec.body_media == "csv":
        return _generic_csv(spec)
    records = [dict(zip(GENERIC_COLUMNS, row)) for row in _generic_rows(spec)]
    return _json_or_ndjson(records, spec.body_media)


def hash_seed(spec: ReportSpec) -> int:
    return random.Random(f"seed:{spec.series}").randrange(1 << 30)


def _json_or_ndjson(records: list, media: str, envelope=None) -> bytes:
    if media == "ndjson":
        return ("\n".join(json.dumps(r, separators=(",", ":")) for r in records) + "\n").encode()
    return json.dumps(envelope(records) if envelope else records,
                      separators=(",", ":")).encode()


# --- CJ ----------------------------------------------------------------------------------
CJ_STATUS = {"pending": ("new", "PENDING"), "confirmed": ("locked", "ACCEPTED"),
             "reversed": ("closed", "DECLINED")}


def _cj_record(spec: ReportSpec, n: int, member: str, b: Body, *, correction: bool,
               percent: int = 0) -> dict:
    action, validation = CJ_STATUS[b.status]
    original_id = f"{spec.series}{n:07d}"
    sale, commission = b.sale, b.commission
    if correction:  # CJ sends the change as a new record with negative deltas
        sale, commission = -(sale * percent // 100), -(commission * percent // 100)
    return {
        "actionTrackerName": f"{b.advertiser} Online Sale", "actionStatus": action,
        "actionType": "advanced sale", "advertiserId": b.network_id,
        "advertiserName": b.advertiser,
        "commissionId": f"{original_id}C" if correction else original_id,
        "correctionReason": "RETURNED_MERCHANDISE" if correction else None,
        "eventDate": f"{b.day.isoformat()}T14:22:10Z", "lockingDate": None,
        "orderId": f"{spec.series}O{n:07d}", "original": not correction,
        "originalActionId": original_id,
        "postingDate": f"{b.day.isoformat()}T09:00:00Z",
        "pubCommissionAmountUsd": _money(commission, "cj"),
        "saleAmountUsd": _money(sale, "cj"), "shopperId": member,
        "validationStatus": validation, "websiteName": "Cashback Portal US",
        "category": b.category,
    }


def _cj(spec: ReportSpec) -> bytes:
    rng = random.Random(f"correct:{spec.series}")
    records = []
    for n, member, b in _lines(replace(spec, correction=False)):
        if spec.correction:
            if rng.random() < 0.25:
                records.append(_cj_record(spec, n, member, b, correction=True,
                                          percent=rng.randrange(10, 101)))
        else:
            records.append(_cj_record(spec, n, member, b, correction=False))
    return _json_or_ndjson(records, spec.body_media, lambda r: {"data": {
        "publisherCommissions": {"count": len(r), "payloadComplete": True, "records": r}}})


# --- Impact ------------------------------------------------------------------------------
IMPACT_STATE = {"pending": "PENDING", "confirmed": "APPROVED", "reversed": "REVERSED"}
IMPACT_COLUMNS = ("Id", "CampaignId", "CampaignName", "ActionTrackerName", "State", "Payout",
                  "Amount", "Currency", "EventDate", "Oid", "SubId1")


def _corrected(rng: random.Random, b: Body) -> Body | None:
    """A network restating a line: confirmed, reversed or lowered (a partial return)."""
    if rng.random() >= 0.25:
        return None
    roll = rng.random()
    if b.status == "pending":
        if roll < 0.65:
            return replace(b, status="confirmed")
        if roll < 0.80:
            return replace(b, status="reversed")
    elif b.status == "confirmed" and roll < 0.5:
        return replace(b, status="reversed")
    if b.status == "reversed":
        return b
    percent = rng.randrange(10, 91)
    return replace(b, status="confirmed", sale=b.sale * percent // 100,
                   commission=b.commission * percent // 100)


def _restated(spec: ReportSpec):
    rng = random.Random(f"correct:{spec.series}")
    for n, member, b in _lines(replace(spec, correction=False)):
        if spec.correction:
            b = _corrected(rng, b)
            if b is None:
                continue
        yield n, member, b


def _impact(spec: ReportSpec) -> bytes:
    records = []
    for n, member, b in _restated(spec):
        records.append({
            "Id": f"{b.network_id}.{spec.series}.{n}", "CampaignId": b.network_id,
            "CampaignName": b.advertiser, "ActionTrackerName": "Online Sale",
            "State": IMPACT_STATE[b.status], "Payout": _money(b.commission, "impact"),
            "Amount": _money(b.sale, "impact"), "Currency": "USD",
            "EventDate": f"{b.day.isoformat()}T11:32:08-07:00",
            "Oid": f"{spec.series}O{n:07d}", "SubId1": member})
    if spec.body_media == "csv":
        out = [",".join(IMPACT_COLUMNS)]
        out += [",".join(r[c] for c in IMPACT_COLUMNS) for r in records]
        return ("\n".join(out) + "\n").encode()
    return _json_or_ndjson(records, spec.body_media, lambda r: {
        "@page": "1", "@numpages": "1", "@pagesize": str(len(r)), "@total": str(len(r)),
        "Actions": r})


# --- Awin --------------------------------------------------------------------------------
AWIN_STATUS = {"pending": "pending", "confirmed": "approved", "reversed": "declined"}


def _awin(spec: ReportSpec) -> bytes:
    records = []
    for n, member, b in _restated(spec):
        records.append({
            "id": f"@{spec.number * 10 ** 7 + n}@",
            "url": "https://portal.example.com", "advertiserId": int(b.network_id),
            "publisherId": 1084412, "siteName": "Cashback Portal US",
            "commissionStatus": AWIN_STATUS[b.status],
            "commissionAmount": {"amount": f"@{_money(b.commission, 'awin')}@",
                                 "currency": "USD"},
            "saleAmount": {"amount": f"@{_money(b.sale, 'awin')}@", "currency": "USD"},
            "clickRefs": {"clickRef": member},
            "transactionDate": f"{b.day.isoformat()}T22:14:00",
            "type": "Commission group transaction", "amended": spec.correction,
            "orderRef": f"{spec.series}O{n:07d}", "advertiserName": b.advertiser})
    body = _json_or_ndjson(records, spec.body_media)
    # amounts as JSON numbers (literal decimal text, never a float round trip)
    return body.replace(b'"@', b"").replace(b'@"', b"")


# --- Rakuten -----------------------------------------------------------------------------
RAKUTEN_COLUMNS = ("Member ID (U1)", "MID", "Advertiser Name", "Order ID", "Transaction Date",
                   "Transaction Time", "SKU", "Sales", "# of Items", "Total Commission",
                   "Process Date", "Process Time", "Currency", "Commission Status")


def _rakuten(spec: ReportSpec) -> bytes:
    rng = random.Random(f"correct:{spec.series}")
    out = [",".join(f'"{c}"' if "#" in c else c for c in RAKUTEN_COLUMNS)]
    for n, member, b in _lines(replace(spec, correction=False)):
        order = f"{spec.series}-{n // 3:07d}"  # about three SKUs per order
        sku = f"SKU-{n:07d}"
        day = b.day.strftime("%Y/%m/%d")
        processed = (b.day + dt.timedelta(days=1)).strftime("%Y/%m/%d")
        status = "locked" if b.status == "confirmed" else "unlocked"
        if spec.correction:  # a return: a new line with negative amounts, days later
            if rng.random() >= 0.2:
                continue
            returned = (b.day + dt.timedelta(days=rng.randrange(2, 20)))
            processed = min(returned, dt.date.today()).strftime("%Y/%m/%d")
            out.append(f"{member},{b.network_id},{b.advertiser},{order},{day},10:12:45,{sku},"
                       f"-{b.sale},1,-{b.commission},{processed},03:10:00,JPY,unlocked")
        else:
            out.append(f"{member},{b.network_id},{b.advertiser},{order},{day},10:12:45,{sku},"
                       f"{b.sale},1,{b.commission},{processed},03:10:00,JPY,{status}")
    return ("\n".join(out) + "\n").encode()


RENDERERS = {"generic": _generic, "cj": _cj, "impact": _impact, "awin": _awin,
             "rakuten": _rakuten}


def render(spec: ReportSpec) -> bytes:
    return RENDERERS[spec.format](spec)


def correction_of(spec: ReportSpec) -> ReportSpec:
    return replace(spec, correction=True)


def request_parts(spec: ReportSpec, body: bytes) -> dict:
    """Keyword arguments for requests/locust: a raw body with its content type, or a
    multipart form with the file in field `file`."""
    if spec.media == "multipart":
        suffix = "csv" if spec.body_media == "csv" else "json"
        return {"files": {"file": (f"{spec.format}-{spec.series}.{suffix}", body,
                                   CONTENT_TYPES[spec.body_media])}}
    return {"data": body, "headers": {"Content-Type": CONTENT_TYPES[spec.media]}}


# --- seeding -----------------------------------------------------------------------------
# Opening balances for the settlement run: one confirmed line per member, dated before the
# cut-off, from retailers whose share rule is a percent of the sale, with a sale large
# enough that the member's share clears the payout minimum (5.01).
OPENING_RETAILERS = (("nike", "apparel", 5.0, 7), ("sephora", "beauty", 4.0, 6),
                     ("expedia", "travel", 3.0, 4), ("walmart", "grocery", 2.5, 4),
                     ("nordstrom", "shoes", 4.0, 5))  # slug, category, share %, commission %


def opening_report(members: int, tenant: str = "us-cashback", chunk: int = 50_000):
    """A generic CSV (as chunks) of one confirmed line per member 1..members."""
    rng = random.Random(f"opening:{tenant}")
    t = TENANTS[tenant]
    yield (",".join(GENERIC_COLUMNS) + "\n").encode()
    if tenant == "jp-points":
        retailers = (("uniqlo", "fashion", 3.0, 6), ("jalan", "travel", 2.0, 5))
        unit, digits, currency, minimum = 1, 0, "JPY", 400
    else:
        retailers = OPENING_RETAILERS
        unit, digits, currency, minimum = 100, 2, "USD", 600
    buffer = []
    for m in range(1, members + 1):
        slug, category, share, rate = retailers[m % len(retailers)]
        low = int(minimum * 100 / share) + unit
        sale = rng.randrange(low, low * 4)
        commission = int(sale * rate / 100)
        day = dt.date(2026, 9, 1) + dt.timedelta(days=m % 60)
        buffer.append(f"OPEN-{t.member_id(m)},OPEN-O{m},{t.member_id(m)},{slug},{category},"
                      f"{day.isoformat()},{format_amount(sale, digits)},"
                      f"{format_amount(commission, digits)},{currency},confirmed\n")
        if len(buffer) >= chunk:
            yield "".join(buffer).encode()
            buffer.clear()
    yield "".join(buffer).encode()
