"""The fixtures: tenant policies, retailers, share rules, members, sample reports, and the
synthetic generator used by benchmarks and load tests (fixtures/README.md)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fixtures import generate, make_members, make_reports
from fixtures.common import REPORT_COLUMNS, TENANTS
from settlement.money import apply_rate, network_scale, parse_amount, parse_rate_ppm
from settlement.reports.formats import LineError, ParseContext, ParsedLine, parser_for
from settlement.reports.formats.generic import COLUMNS as GENERIC_COLUMNS
from settlement.tenants.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
TODAY = dt.date(2026, 11, 24)
CONTEXTS = {"us-cashback": ParseContext("USD", 2, TODAY),
            "jp-points": ParseContext("JPY", 0, TODAY)}
MEMBER_PATTERN = {"us-cashback": re.compile(r"RR\d{6,}\Z"), "jp-points": re.compile(r"HP\d{6,}\Z")}
MEMBERS_HEADER = ("external_id,name,email,joined_at,referred_by,address_line1,address_line2,city,"
                  "region,postal_code,country,payout_method,paypal_email,amex_account,amex_card,"
                  "bilt_account,bilt_tier")
SAMPLES = [("us-cashback", "generic_report.csv"), ("us-cashback", "generic_report_update.csv"),
           ("us-cashback", "generic_report_late.csv"), ("jp-points", "generic_report.csv")]
# The story of the samples: the first reports say what was known on 2026-11-10, the US update
# arrives on 2026-11-13, the 2026-11-15 payout run pays what was confirmed on or before its
# cut-off, 2026-11-14, and the late US file arrives on 2026-11-20.
LAST_DAY = dt.date(2026, 11, 10)
PAYOUT_DATE = dt.date(2026, 11, 15)
CUTOFF = dt.date(2026, 11, 14)
LATE_AS_OF = dt.datetime(2026, 11, 20, 18, tzinfo=dt.timezone.utc)
PAYOUT_CASES = {
    "us-cashback": {"minimum_exactly", "below_minimum", "no_mailing_address",
                    "paypal_without_email", "returned_after_confirmation", "amex_mr_eligible",
                    "amex_mr_corporate_card", "amex_mr_no_account", "bilt_blue", "bilt_platinum",
                    "confirmed_after_cutoff"},
    "jp-points": {"minimum_exactly", "below_minimum", "check_disabled",
                  "amazon_outside_category"},
}
PAYABLE = "payable_2026_11_15"


def parse(chunks, tenant: str) -> tuple[list[ParsedLine], list[LineError]]:
    lines, errors = [], []
    for item in parser_for("generic", "csv")(chunks, CONTEXTS[tenant]):
        (lines if isinstance(item, ParsedLine) else errors).append(item)
    return lines, errors


def report(tenant="us-cashback", lines=2000, members=3000, seed=7, **kw) -> bytes:
    return b"".join(generate.report_chunks(TENANTS[tenant], lines, members, seed, **kw))


def members_csv(tenant: str, count: int, seed: int = make_members.FIXTURE_SEED) -> str:
    out = io.StringIO(newline="")
    make_members.write_members(out, TENANTS[tenant], count, seed)
    return out.getvalue()


def read_members(tenant: str) -> list[dict]:
    with open(FIXTURES / tenant / "members.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- tenants, retailers, share rules -----------------------------------------------------

def test_tenant_policy_files_validate_with_load_policy():
    us = load_policy(FIXTURES / "tenants" / "us-cashback.toml")
    assert (us.slug, us.currency, us.timezone, us.report_errors) == (
        "us-cashback", "USD", "America/New_York", "partial")
    assert us.payouts.dates == ("02-15", "05-15", "08-15", "11-15")
    assert us.minimum_payout_minor == 501
    assert us.payouts.methods.enabled() == ["check", "paypal", "amex_mr", "bilt"]
    assert len(us.referrals) == 3
    jp = load_policy(FIXTURES / "tenants" / "jp-points.json")
    assert (jp.slug, jp.currency, jp.timezone, jp.report_errors) == (
        "jp-points", "JPY", "Asia/Tokyo", "whole")
    assert len(jp.payouts.dates) == 12 and jp.minimum_payout_minor == 300
    assert jp.payouts.methods.enabled() == ["paypal"]
    assert jp.points.expire_after_days == 180


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_share_rules_name_fixture_retailers_and_valid_rates(tenant):
    retailers = json.loads((FIXTURES / tenant / "retailers.json").read_text(encoding="utf-8"))
    slugs = {r["slug"] for r in retailers}
    assert len(slugs) == len(retailers)
    for r in retailers:
        assert set(r) == {"slug", "name", "category", "network_ids"}
        assert set(r["network_ids"]) <= {"cj", "impact", "awin", "rakuten"}
        assert all(isinstance(v, str) and v.isdigit() for v in r["network_ids"].values())
    rules = json.loads((FIXTURES / tenant / "share_rules.json").read_text(encoding="utf-8"))
    digits = TENANTS[tenant].policy.minor_digits
    assert any(r["retailer"] is None and r["category"] is None for r in rules)  # a default
    for rule in rules:
        assert rule["retailer"] is None or rule["retailer"] in slugs
        assert rule["kind"] in ("percent_of_sale", "percent_of_commission", "fixed")
        if rule["kind"] == "fixed":
            assert "rate" not in rule and parse_amount(rule["amount"], digits) > 0
        else:
            assert "amount" not in rule and parse_rate_ppm(rule["rate"]) > 0
        if rule["valid_from"] and rule["valid_to"]:
            assert rule["valid_from"] < rule["valid_to"]
        assert isinstance(rule["priority"], int) and isinstance(rule["category_only"], bool)
        assert not rule["category_only"] or rule["category"]


# --- members --------------------------------------------------------------------------------

@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_members_csv_has_the_exact_columns(tenant):
    committed = (FIXTURES / tenant / "members.csv").read_text(encoding="utf-8")
    assert committed.split("\n", 1)[0] == MEMBERS_HEADER
    assert members_csv(tenant, 50, seed=3).split("\n", 1)[0] == MEMBERS_HEADER
    assert ",".join(make_members.COLUMNS) == MEMBERS_HEADER


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_committed_members_files_are_the_output_of_make_members(tenant):
    count = make_members.FIXTURE_COUNTS[tenant]
    committed = (FIXTURES / tenant / "members.csv").read_text(encoding="utf-8")
    assert members_csv(tenant, count) == committed


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_members_referrers_joined_earlier_and_never_refer_themselves(tenant):
    rows = read_members(tenant)
    position = {row["external_id"]: i for i, row in enumerate(rows)}
    assert [row["external_id"] for row in rows] == [
        TENANTS[tenant].member_id(n) for n in range(1, len(rows) + 1)]
    assert all(a["joined_at"] < b["joined_at"] for a, b in zip(rows, rows[1:]))
    assert "2025-01-01" <= rows[0]["joined_at"] and rows[-1]["joined_at"] < "2026-11-16"
    referred = [row for row in rows if row["referred_by"]]
    for row in referred:
        assert row["referred_by"] != row["external_id"]
        assert position[row["referred_by"]] < position[row["external_id"]]
    assert 0.10 < len(referred) / len(rows) < 0.20

    def address(row):
        return tuple(row[k] for k in ("address_line1", "address_line2", "city", "region",
                                      "postal_code", "country"))

    shared = [row for row in referred if row["address_line1"]
              and address(row) == address(rows[position[row["referred_by"]]])]
    assert len(shared) >= 3


def test_members_hold_the_payout_edge_cases():
    us = read_members("us-cashback")
    methods = Counter(row["payout_method"] for row in us)
    assert set(methods) == {"check", "paypal", "amex_mr", "bilt"}
    assert methods["check"] > methods["paypal"] > methods["amex_mr"] > methods["bilt"]
    no_address = [row for row in us if not row["address_line1"]]
    assert 0.01 < len(no_address) / len(us) < 0.03
    assert all(not any(row[k] for k in ("address_line2", "city", "region", "postal_code",
                                         "country")) for row in no_address)
    assert any(row["payout_method"] == "paypal" and not row["paypal_email"] for row in us)
    amex = [row for row in us if row["payout_method"] == "amex_mr"]
    assert {row["amex_card"] for row in amex} == {"gold", "platinum", "green", "corporate"}
    assert any(not row["amex_account"] for row in amex)
    assert {row["bilt_tier"] for row in us if row["payout_method"] == "bilt"} == {
        "blue", "silver", "gold", "platinum"}
    per_year = Counter((row["referred_by"], row["joined_at"][:4])
                       for row in us if row["referred_by"])
    assert max(per_year.values()) > 20  # a power referrer over the policy's yearly cap
    jp = read_members("jp-points")
    assert {row["payout_method"] for row in jp} == {"paypal", "check"}
    assert {row["country"] for row in jp} == {"JP", ""}
    assert not any(row["amex_account"] or row["bilt_account"] for row in jp)


def test_members_command_streams_the_members_format(tmp_path):
    target = tmp_path / "members.csv"
    assert generate.main(["members", "--count", "2500", "--tenant", "us-cashback",
                          "--seed", "5", "--out", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text == members_csv("us-cashback", 2500, seed=5)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2500 and rows[-1]["external_id"] == "RR002500"


# --- generated reports ------------------------------------------------------------------

@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_generated_report_parses_with_zero_errors(tenant):
    lines, errors = parse(generate.report_chunks(TENANTS[tenant], 5000, 700, seed=11), tenant)
    assert errors == []
    assert len(lines) == 5000
    slugs = {r["slug"] for r in TENANTS[tenant].retailers()}
    assert {line.retailer for line in lines} <= slugs
    assert all(MEMBER_PATTERN[tenant].match(line.member) for line in lines)
    assert all(1 <= int(line.member[2:]) <= 700 for line in lines)
    assert all(dt.date(2026, 6, 1) <= line.event_date <= dt.date(2026, 11, 20) for line in lines)
    statuses = Counter(line.status for line in lines)
    assert 0.55 < statuses["pending"] / 5000 < 0.65
    assert 0.30 < statuses["confirmed"] / 5000 < 0.40
    assert 0.02 < statuses["reversed"] / 5000 < 0.08


def test_generated_report_header_is_the_generic_columns():
    assert REPORT_COLUMNS == GENERIC_COLUMNS
    assert report(lines=0) == (",".join(GENERIC_COLUMNS) + "\n").encode()


def test_same_seed_gives_identical_bytes():
    first = report(seed=42)
    assert first == report(seed=42)
    assert first == b"".join(generate.report_chunks(TENANTS["us-cashback"], 2000, 3000, 42,
                                                    batch=333))  # batching changes nothing
    assert first != report(seed=43)


def test_transaction_ids_are_unique_within_a_file_and_across_prefixes():
    a, _ = parse([report(lines=30_000, seed=1)], "us-cashback")
    ids = [line.transaction_id for line in a]
    assert len(set(ids)) == len(ids) == 30_000
    b, _ = parse([report(lines=1000, seed=1, prefix="second-")], "us-cashback")
    assert not {line.transaction_id for line in b} & set(ids)
    c, _ = parse([report(lines=1000, seed=2)], "us-cashback")  # default prefix holds the seed
    assert not {line.transaction_id for line in c} & set(ids)


def test_update_resends_a_fraction_of_the_same_ids_with_new_statuses():
    original_text = report(lines=4000, seed=9).decode()
    original, _ = parse([original_text.encode()], "us-cashback")
    by_id = {line.transaction_id: line for line in original}
    update_text = b"".join(generate.update_chunks(
        TENANTS["us-cashback"], io.StringIO(original_text, newline=""), seed=3, fraction=0.25))
    updated, errors = parse([update_text], "us-cashback")
    assert errors == []
    assert 800 < len(updated) < 1200
    changes = Counter()
    for line in updated:
        before = by_id[line.transaction_id]
        assert (line.member, line.retailer, line.event_date) == (
            before.member, before.retailer, before.event_date)
        assert 0 <= line.sale_amount <= before.sale_amount
        assert 0 <= line.commission_amount <= before.commission_amount
        if before.status == "reversed":
            assert line.status == "reversed"
        lowered = line.sale_amount < before.sale_amount
        changes[(before.status, line.status, lowered)] += 1
    assert changes[("pending", "confirmed", False)] > changes[("pending", "reversed", False)] > 0
    assert changes[("pending", "confirmed", True)] > 0
    assert changes[("confirmed", "reversed", False)] > 0
    order = {line.transaction_id: i for i, line in enumerate(original)}
    positions = [order[line.transaction_id] for line in updated]
    assert positions == sorted(positions)  # the original's order


def test_command_line_writes_a_report_and_its_update(tmp_path):
    target, update = tmp_path / "r.csv", tmp_path / "u.csv"
    assert generate.main(["--lines", "300", "--members", "50", "--tenant", "jp-points",
                          "--seed", "4", "--prefix", "x-", "--out", str(target)]) == 0
    assert target.read_bytes() == report("jp-points", 300, 50, 4, prefix="x-")
    assert generate.main(["--update-of", str(target), "--tenant", "jp-points", "--seed", "5",
                          "--out", str(update)]) == 0
    lines, errors = parse([update.read_bytes()], "jp-points")
    assert errors == [] and lines and all(line.transaction_id.startswith("x-T") for line in lines)
    run = subprocess.run([sys.executable, "-m", "fixtures.generate", "--lines", "3",
                          "--seed", "4", "--out", "-"], cwd=ROOT, capture_output=True, check=True)
    assert run.stdout == report(lines=3, members=3000, seed=4)


def test_command_line_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        generate.main(["--members", "10"])  # no --lines
    with pytest.raises(SystemExit):
        generate.main(["--lines", "10", "--start", "2026-11-01", "--end", "2026-10-01"])
    with pytest.raises(SystemExit):
        generate.main(["--lines", "10", "--prefix", "a,b"])
    assert "error" in capsys.readouterr().err


# --- sample reports --------------------------------------------------------------------------

@pytest.mark.parametrize("tenant,name", SAMPLES)
def test_sample_generic_reports_parse_with_no_errors(tenant, name):
    lines, errors = parse([(FIXTURES / tenant / name).read_bytes()], tenant)
    assert errors == []
    assert len({line.transaction_id for line in lines}) == len(lines)
    if name == "generic_report.csv":
        assert 150 <= len(lines) <= 250
        assert {line.status for line in lines} == {"pending", "confirmed", "reversed"}
        assert {line.retailer for line in lines} == {r["slug"] for r in TENANTS[tenant].retailers()}
        unknown = "RR999999" if tenant == "us-cashback" else "HP999999"
        assert sum(line.member == unknown for line in lines) >= 3
        amazon = [line for line in lines if line.retailer.startswith("amazon")]
        assert any(line.category == "fashion" for line in amazon)
        assert any(line.category not in (None, "fashion") for line in amazon)
    if name != "generic_report_late.csv":
        assert all(dt.date(2026, 6, 1) <= line.event_date <= LAST_DAY for line in lines)


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_sample_lines_fall_on_both_sides_of_each_dated_rule(tenant):
    """Every retailer rule that starts or ends within the samples' dates (the Macy's
    promotion, Nordstrom's new rate, Jalan's July) has lines the day before and the day of
    each bound."""
    lines, _ = parse([(FIXTURES / tenant / "generic_report.csv").read_bytes()], tenant)
    rules = json.loads((FIXTURES / tenant / "share_rules.json").read_text(encoding="utf-8"))
    checked = 0
    for rule in rules:
        days = {line.event_date for line in lines if line.retailer == rule["retailer"]}
        for bound in (rule["valid_from"], rule["valid_to"]):
            day = dt.date.fromisoformat(bound) if bound else None
            if rule["retailer"] and day and dt.date(2026, 6, 1) < day <= LAST_DAY:
                assert {day - dt.timedelta(days=1), day} <= days, (rule, bound)
                checked += 1
    assert checked >= 2


def test_sample_update_resends_ids_of_the_sample_report():
    original, _ = parse([(FIXTURES / "us-cashback" / "generic_report.csv").read_bytes()],
                        "us-cashback")
    update, _ = parse([(FIXTURES / "us-cashback" / "generic_report_update.csv").read_bytes()],
                      "us-cashback")
    by_id = {line.transaction_id: line for line in original}
    assert 40 <= len(update) <= 60 and all(line.transaction_id in by_id for line in update)
    kinds = Counter()
    for line in update:
        before = by_id[line.transaction_id]
        assert (line.member, line.retailer, line.event_date) == (
            before.member, before.retailer, before.event_date)
        kinds[(before.status, line.status, line.sale_amount < before.sale_amount)] += 1
    assert kinds[("pending", "confirmed", False)] and kinds[("pending", "reversed", False)]
    assert kinds[("confirmed", "reversed", False)]
    assert sum(n for (_, _, lowered), n in kinds.items() if lowered) >= 5


def test_late_file_confirms_lines_left_pending_and_adds_new_pending_ones():
    original, _ = parse([(FIXTURES / "us-cashback" / "generic_report.csv").read_bytes()],
                        "us-cashback")
    update, _ = parse([(FIXTURES / "us-cashback" / "generic_report_update.csv").read_bytes()],
                      "us-cashback")
    late, _ = parse([(FIXTURES / "us-cashback" / "generic_report_late.csv").read_bytes()],
                    "us-cashback")
    by_id = {line.transaction_id: line for line in original}
    updated = {line.transaction_id for line in update}
    assert 15 <= len(late) <= 25
    resent = [line for line in late if line.transaction_id in by_id]
    new = [line for line in late if line.transaction_id not in by_id]
    assert len(resent) >= 15 and len(new) >= 2
    for line in resent:
        before = by_id[line.transaction_id]
        assert before.status == "pending" and line.transaction_id not in updated
        assert line.status == "confirmed"
        assert (line.member, line.retailer, line.event_date, line.sale_amount) == (
            before.member, before.retailer, before.event_date, before.sale_amount)
    assert all(line.status == "pending" and LAST_DAY < line.event_date <= LATE_AS_OF.date()
               for line in new)


def test_committed_samples_are_the_output_of_make_reports():
    written = make_reports.samples()
    for (tenant, name), text in written.items():
        assert (FIXTURES / tenant / name).read_text(encoding="utf-8") == text, name
    for tenant in TENANTS:
        assert (tenant, "uploads.json") in written and (tenant, "featured.json") in written
        on_disk = {p.name for p in (FIXTURES / tenant).glob("generic_report*.csv")}
        assert on_disk == {name for t, name in written if t == tenant
                           and name.startswith("generic_report")}


# --- the upload manifests -----------------------------------------------------------------

def _manifest(tenant: str) -> list[dict]:
    return json.loads((FIXTURES / tenant / "uploads.json").read_text(encoding="utf-8"))


def _as_of(entry: dict) -> dt.datetime:
    assert entry["as_of"].endswith("Z")
    return dt.datetime.fromisoformat(entry["as_of"].replace("Z", "+00:00"))


def _parse_upload(tenant: str, entry: dict, today: dt.date):
    policy = TENANTS[tenant].policy
    path = FIXTURES / entry["file"]
    ctx = ParseContext(policy.currency, policy.minor_digits, today)
    lines, errors = [], []
    for item in parser_for(entry["format"], path.suffix[1:])([path.read_bytes()], ctx):
        (lines if isinstance(item, ParsedLine) else errors).append(item)
    return lines, errors


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_upload_manifest_lists_every_sample_once_in_time_order(tenant):
    entries = _manifest(tenant)
    assert all(set(e) == {"file", "format", "as_of"} for e in entries)
    assert all(e["format"] in ("generic", "cj", "impact", "awin", "rakuten") for e in entries)
    files = [e["file"] for e in entries]
    assert len(set(files)) == len(files)
    samples = {f"reports/{tenant}/{p.name}" for p in (FIXTURES / "reports" / tenant).glob("*")}
    samples |= {f"{tenant}/{p.name}" for p in (FIXTURES / tenant).glob("generic_report*.csv")}
    assert set(files) == samples
    times = [_as_of(e) for e in entries]
    assert times == sorted(times)
    assert all(e["format"] == "generic" for e in entries if e["file"].startswith(tenant))
    # Network samples first, then the generic reports (the demo's order).
    kinds = [e["file"].startswith("reports/") for e in entries]
    assert kinds == sorted(kinds, reverse=True)


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_every_upload_is_accepted_whole_at_its_as_of_time(tenant):
    """A line dated after as_of + 14 hours is refused as a future date: no line may be."""
    for entry in _manifest(tenant):
        as_of = _as_of(entry)
        assert as_of <= dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)  # not in the future
        latest = (as_of + dt.timedelta(hours=14)).date()
        lines, errors = _parse_upload(tenant, entry, latest)
        assert lines and errors == [], (entry["file"], errors[:3])
        if as_of.date() <= CUTOFF:
            assert all(line.event_date <= LAST_DAY for line in lines), entry["file"]


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_members_buy_only_after_joining_in_every_upload(tenant):
    joined = {row["external_id"]: row["joined_at"][:10] for row in read_members(tenant)}
    for entry in _manifest(tenant):
        lines, _ = _parse_upload(tenant, entry, TODAY)
        late = [(line.transaction_id, line.member) for line in lines if line.member in joined
                and line.event_date.isoformat() < joined[line.member]]
        assert late == [], entry["file"]


def _share(rules: list[dict], line, digits: int) -> int:
    """The member share of a generic line under share_rules.json: highest priority, then a
    retailer's rule, then the exact category, then a broader rule (settlement.commissions
    .rules.best_rule_sql), rounded half-even once."""
    day = line.event_date.isoformat()
    candidates = [
        (rule["priority"], rule["retailer"] is not None, rule["category"] == line.category,
         rule["category"] is None, i, rule)
        for i, rule in enumerate(rules)
        if rule["retailer"] in (None, line.retailer)
        and (rule["category"] in (None, line.category)
             or (rule["category_only"] and rule["retailer"] == line.retailer))
        and (rule["valid_from"] is None or rule["valid_from"] <= day)
        and (rule["valid_to"] is None or day < rule["valid_to"])]
    if not candidates:
        return 0
    rule = max(candidates, key=lambda c: c[:5])[5]
    if rule["category_only"] and line.category != rule["category"]:
        return 0
    if rule["kind"] == "fixed":
        amount = parse_amount(rule["amount"], digits)
        return amount if line.commission_amount > 0 else -amount if line.commission_amount else 0
    base = line.sale_amount if rule["kind"] == "percent_of_sale" else line.commission_amount
    return apply_rate(base, parse_rate_ppm(rule["rate"]), "half_even", network_scale(digits))


def _replay(tenant: str) -> tuple[dict, dict]:
    """The generic reports of the manifest applied in order, as the ledger would: per
    transaction its status, share and confirmation date (the as-of date, in the tenant's
    time zone, of the report that confirmed it); and the share of each line as first
    reported."""
    policy = TENANTS[tenant].policy
    zone = ZoneInfo(policy.timezone)
    rules = json.loads((FIXTURES / tenant / "share_rules.json").read_text(encoding="utf-8"))
    state, first = {}, {}
    for entry in _manifest(tenant):
        if entry["format"] != "generic":
            continue
        as_of = _as_of(entry)
        lines, _ = _parse_upload(tenant, entry, (as_of + dt.timedelta(hours=14)).date())
        for line in lines:
            share = _share(rules, line, policy.minor_digits)
            before = state.get(line.transaction_id)
            confirmed_on = before[3] if before else None
            if line.status == "confirmed" and (before is None or before[1] != "confirmed"):
                confirmed_on = as_of.astimezone(zone).date()
            state[line.transaction_id] = (line.member, line.status, share, confirmed_on)
            first.setdefault(line.transaction_id, share)
    return state, first


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_featured_payout_cases_are_payable_as_listed_on_the_payout_date(tenant):
    """member_share is the share of the member's lines as first reported; the payable
    amount is what the 2026-11-15 run pays from: the available balance after every upload
    of the manifest, less what was confirmed after the 2026-11-14 cut-off."""
    assert TENANTS[tenant].policy.payouts.cutoff.rule == "confirmed_before_date"
    assert CUTOFF == PAYOUT_DATE - dt.timedelta(days=1)
    digits = TENANTS[tenant].policy.minor_digits
    featured = json.loads((FIXTURES / tenant / "featured.json").read_text(encoding="utf-8"))
    assert {f["case"] for f in featured if PAYABLE in f} == PAYOUT_CASES[tenant]
    state, first = _replay(tenant)
    for entry in featured:
        own = {txn: s for txn, s in state.items() if s[0] == entry["member"]}
        assert set(own) == set(entry["transactions"]), entry["case"]
        if "member_share" in entry:
            assert sum(first[txn] for txn in own) == parse_amount(entry["member_share"], digits), \
                entry["case"]
        if PAYABLE in entry:
            available = sum(s[2] for s in own.values() if s[1] == "confirmed")
            late = sum(s[2] for s in own.values() if s[1] == "confirmed" and s[3] > CUTOFF)
            assert available - late == parse_amount(entry[PAYABLE], digits), entry["case"]


def test_featured_timeline_holds_the_payout_stories():
    featured = {f["case"]: f for f in json.loads(
        (FIXTURES / "us-cashback" / "featured.json").read_text(encoding="utf-8"))}
    state, _ = _replay("us-cashback")
    # $5.01 confirmed by the update, before the cut-off; $5.00 rolls over.
    (txn,) = featured["minimum_exactly"]["transactions"]
    assert state[txn][1:] == ("confirmed", 501, dt.date(2026, 11, 13))
    assert featured["below_minimum"][PAYABLE] == "5.00"
    # Confirmed, then reversed before the cut-off: nothing left to pay.
    (txn,) = featured["returned_after_confirmation"]["transactions"]
    assert state[txn][1] == "reversed" and state[txn][3] == dt.date(2026, 11, 10)
    # Part confirmed in time, part only after the cut-off.
    on_time, late = featured["confirmed_after_cutoff"]["transactions"]
    assert state[on_time][3] <= CUTOFF < state[late][3]


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_featured_members_have_only_their_listed_lines(tenant):
    featured = json.loads((FIXTURES / tenant / "featured.json").read_text(encoding="utf-8"))
    lines, _ = parse([(FIXTURES / tenant / "generic_report.csv").read_bytes()], tenant)
    members = {row["external_id"]: row for row in read_members(tenant)}
    in_networks = set()
    for entry in _manifest(tenant):
        if entry["format"] != "generic":
            network_lines, _ = _parse_upload(tenant, entry, TODAY)
            in_networks |= {line.member for line in network_lines}
    for entry in featured:
        assert entry["member"] in members
        assert entry["payout_method"] == members[entry["member"]]["payout_method"]
        own = {line.transaction_id for line in lines if line.member == entry["member"]}
        assert own == set(entry["transactions"]), entry["case"]
        assert entry["member"] not in in_networks, entry["case"]
