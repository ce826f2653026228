"""Every ISO 4217 currency, with its minor digits from babel (CLDR), and errors that say
what is wrong with a currency."""
from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.money import CURRENCY_MINOR_DIGITS, AmountError, minor_digits
from settlement.tenants.policy import TenantPolicy
from tests.conftest import generic_csv, policy_document
from tests.domain.helpers import add_members, add_retailer, add_rule, balances, ingest

AS_OF = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("code,digits", [("USD", 2), ("BRL", 2), ("JPY", 0), ("KRW", 0),
                                         ("KWD", 3), ("BHD", 3), ("CLF", 4), ("INR", 2),
                                         ("XOF", 0), ("CHF", 2)])
def test_iso_4217_currency_has_its_minor_digits_from_babel(code, digits):
    assert minor_digits(code) == digits


@pytest.mark.parametrize("code", ["ZZZ", "XAU", "XXX", "usd", "US"])
def test_code_that_is_not_money_is_refused_as_not_an_iso_4217_currency(code):
    with pytest.raises(AmountError, match="is not an ISO 4217 currency"):
        minor_digits(code)
    assert code not in CURRENCY_MINOR_DIGITS


def test_brl_tenant_is_created_and_its_reports_are_read_in_reais(make_tenant, engine):
    tenant = make_tenant("BRL", timezone="America/Sao_Paulo",
                         payouts={"dates": ["03-10"], "minimum": "20.00"})
    add_retailer(engine, tenant, "magalu")
    add_rule(engine, tenant)
    add_members(engine, tenant, "BR0001")
    report = ingest(engine, tenant, generic_csv(
        "T-1,,BR0001,magalu,,2026-09-15,1299.90,64.9951,BRL,confirmed"), as_of=AS_OF)
    assert report.inserted == 1
    assert balances(engine, tenant, "BR0001")["available"] == 3250  # 32.49755 -> 32.50


def test_line_in_another_known_currency_says_it_is_not_the_tenants(make_tenant, engine):
    tenant = make_tenant("USD")
    add_retailer(engine, tenant, "macys")
    report = ingest(engine, tenant, generic_csv(
        "T-1,,M1,macys,,2026-09-15,10.00,1.00,BRL,pending",
        "T-2,,M1,macys,,2026-09-15,10.00,1.00,ZZZ,pending"), as_of=AS_OF)
    with Session(engine) as session:
        errors = session.execute(text(
            "SELECT line, code, message FROM report_errors WHERE tenant_id = :t "
            "AND report_id = :r ORDER BY seq"), {"t": tenant.id, "r": report.id}).all()
    assert errors == [
        (2, "wrong_currency", "currency: BRL is not this tenant's currency (USD)"),
        (3, "unknown_currency", "currency 'ZZZ' is not an ISO 4217 currency")]


def test_tenant_policy_refuses_a_code_that_is_not_a_currency():
    with pytest.raises(ValidationError, match="'BRX' is not an ISO 4217 currency"):
        TenantPolicy.model_validate(policy_document("cur", "BRX"))


def test_kwd_tenant_states_amounts_in_fils():
    policy = TenantPolicy.model_validate(policy_document("kwd", "KWD",
                                                         payouts={"dates": ["01-15"],
                                                                  "minimum": "5.125"}))
    assert (policy.minor_digits, policy.minimum_payout_minor) == (3, 5125)
