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

import pytest

from fixtures import generate, make_members, make_reports
from fixtures.common import REPORT_COLUMNS, TENANTS
from settlement.money import parse_amount, parse_rate_ppm
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
           ("jp-points", "generic_report.csv")]


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
        assert all(dt.date(2026, 6, 1) <= line.event_date <= dt.date(2026, 11, 20)
                   for line in lines)


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
        kinds[(before.status, line.status, line.sale_amount < before.sale_amount)] += 1
    assert kinds[("pending", "confirmed", False)] and kinds[("pending", "reversed", False)]
    assert kinds[("confirmed", "reversed", False)]
    assert sum(n for (_, _, lowered), n in kinds.items() if lowered) >= 5


def test_committed_samples_are_the_output_of_make_reports():
    for (tenant, name), text in make_reports.samples().items():
        assert (FIXTURES / tenant / name).read_text(encoding="utf-8") == text, name


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_featured_members_have_only_their_listed_lines(tenant):
    featured = json.loads((FIXTURES / tenant / "featured.json").read_text(encoding="utf-8"))
    lines, _ = parse([(FIXTURES / tenant / "generic_report.csv").read_bytes()], tenant)
    members = {row["external_id"]: row for row in read_members(tenant)}
    for entry in featured:
        assert entry["member"] in members
        assert entry["payout_method"] == members[entry["member"]]["payout_method"]
        own = {line.transaction_id for line in lines if line.member == entry["member"]}
        assert own == set(entry["transactions"]), entry["case"]
