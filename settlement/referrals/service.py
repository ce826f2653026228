"""The referral lifecycle, set-based: recording referrals, qualifying purchases, bonus pairs
and their ledger entries, the review of held referrals and the sweep of ended windows.
The rules are in the package docstring (settlement/referrals/__init__.py).

Every step is a few statements over temporary tables (as settlement/commissions/lifecycle.py
does), the same SQL on PostgreSQL and SQLite; no statement runs per member or per line.
Planning rule: each statement is driven by a temporary table (ANALYZEd when large), reaches
a permanent table by LEFT JOIN from it (the temporary table stays the preserved side), by a
correlated lookup on a key, or by one inner join on a key that the temporary table is
indexed on. Plans then stay linear even before the permanent tables have statistics (a
tenant just loaded, when row-level security makes PostgreSQL believe they hold one row).

On PostgreSQL a transaction-scoped advisory lock serialises one tenant's referral work, so
two reports applied at once cannot both grant the pair of one friend (the partial unique
index on live bonuses and the entries' idempotency keys would refuse it anyway).

Report processing looks at the friends whose money its entries moved, and at every pending
pair: a friend whose changes in one report cancel out exactly in both buckets is only looked
at by the next report that moves their money, or by the sweep, which looks at everyone.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from settlement.errors import DomainError
from settlement.ledger.writer import post_entries_from_select
from settlement.models import Tenant
from settlement.referrals import terms as T
from settlement.states import BonusStatus, CommissionStatus, ReferralStatus, sql_in
from settlement.sql import (
    ANALYZE_ROWS,
    analyze_table,
    copy_rows,
    create_temp_table,
    drop_temp_tables,
    plus_days,
    temp_table,
    transaction_lock,
    year_of,
)
from settlement.tenants.policy import TenantPolicy
from settlement.tenants.service import policy_of

# The statuses of a referral, in the order the sweep reports them.
STATUSES = tuple(ReferralStatus)
# Referrals without a qualifying purchase (an expired one may still have had it in time).
UNQUALIFIED = (ReferralStatus.OPEN, ReferralStatus.EXPIRED)
# Referrals the sweep evaluates, and those a report may still move.
IN_PLAY = (ReferralStatus.OPEN, ReferralStatus.PENDING, ReferralStatus.EXPIRED)
LIVE = (*IN_PLAY, ReferralStatus.EARNED)
# Refusals found when the referral is recorded: they are re-checked whenever the friend or
# the referrer changes, and by the sweep (a referrer who joins later, a join date set).
RECORD_REASONS = ("not_referred", "unknown_referrer", "referral_cycle", "no_join_date",
                  "no_terms")
LOCK_NAMESPACE = 0x52454652  # "REFR": pg_advisory_xact_lock(namespace, tenant)
_TEMPS = ("ref_ids", "ref_scope", "ref_touched", "ref_settle0", "ref_settle", "ref_open", "ref_first",
          "ref_cand", "ref_new", "ref_grant", "ref_legs", "ref_posted", "ref_friends",
          "ref_cycles", "ref_sync", "ref_claw")


class ReferralError(DomainError):
    def __init__(self, code: str, message: str):
        super().__init__(code, message)


# --- temporary tables and the tenant's lock ----------------------------------------------

def _temp(session: Session, name: str, select_sql: str, params: dict,
          key: str | tuple[str, ...] = ()) -> None:
    # A table never analyzed is planned as ten pages or so (hash joins, never a loop over a
    # scan): right for a small one. A large one gets its real statistics.
    # Joined to a permanent table on `key`: whatever order the planner picks (it may believe
    # a permanent table it has no statistics for yet holds one row), each row of the other
    # side is an index probe here, never a scan.
    keys = (key,) if isinstance(key, str) else key
    temp_table(session, name, select_sql, params, analyze="when_large",
               indexes={f"{name}_key{n}": column for n, column in enumerate(keys)})


def _drop(session: Session, *names: str) -> None:
    drop_temp_tables(session, *(names or _TEMPS))


def _earned_this_year(session: Session, referrer: str, year: str) -> str:
    """How many referrer bonuses `referrer` has earned (and still holds) in `year`, by the
    date each was earned: the count the yearly cap is checked against."""
    return f"""(SELECT count(*) FROM referral_bonuses b
               WHERE b.tenant_id = :t AND b.member_id = {referrer} AND b.side = 'referrer'
                 AND b.status = '{BonusStatus.EARNED}'
                 AND {year_of(session, 'b.confirmed_on')} = {year})"""


def _lock(session: Session, tenant_id: int) -> None:
    transaction_lock(session, LOCK_NAMESPACE, tenant_id)


def local_today(policy: TenantPolicy) -> dt.date:
    return dt.datetime.now(ZoneInfo(policy.timezone)).date()


def _policy(session: Session, tenant_id: int) -> TenantPolicy:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise LookupError(f"no tenant {tenant_id}")
    return policy_of(tenant)


def _count(session: Session, sql: str, params: dict | None = None) -> int:
    return int(session.execute(text(sql), params or {}).scalar_one() or 0)


# --- the ledger ----------------------------------------------------------------------------

def _key(referral: str, commission: str, transition: str) -> str:
    return f"'referral:' || {referral} || ':' || {commission} || ':' || {transition}"


def _post(session: Session, tenant_id: int, currency: str, legs_sql: str,
          params: dict) -> int:
    """Post every entry of `legs_sql` (ekey, memo, account, member_id, amount): one journal
    entry per key, all their postings in ONE statement; ref_posted then holds each new
    entry's id, for the bonuses that point at it."""
    return post_entries_from_select(session, tenant_id, "referral", currency=currency,
                                    legs_sql=legs_sql, params=params, legs_table="ref_legs",
                                    entries_table="ref_posted")


# --- recording referrals (members changed) -----------------------------------------------

def _ids_table(session: Session, ids: list[str]) -> None:
    """ref_ids: the external ids of the members just written (COPY on PostgreSQL)."""
    create_temp_table(session, "ref_ids", "(external_id VARCHAR(128))")
    copy_rows(session, "ref_ids", ("external_id",), ((external_id,) for external_id in ids))
    session.execute(text("CREATE INDEX ref_ids_key ON ref_ids (external_id)"))
    if len(ids) > ANALYZE_ROWS:
        analyze_table(session, "ref_ids")


def _friends(session: Session, tenant_id: int, ids: list[str] | None) -> None:
    """ref_friends: the members in scope who are, or were, referred: those named in `ids`,
    those referred by one of them (a referrer who joined after them), and those on a known
    cycle (a change anywhere on a cycle may break it); None: every member."""
    members = ("SELECT f.id AS friend_id, f.external_id, f.referred_by, f.joined_at "
               "FROM members f")
    if ids is None:
        source = f"{members} WHERE f.tenant_id = :t"
    else:
        _ids_table(session, ids)
        source = f"""{members} JOIN ref_ids i ON f.tenant_id = :t AND f.external_id = i.external_id
          UNION {members} JOIN ref_ids i ON f.tenant_id = :t AND f.referred_by = i.external_id
          UNION {members} WHERE f.tenant_id = :t AND f.id IN (
                SELECT x.friend_id FROM referrals x WHERE x.tenant_id = :t
                  AND x.status = '{ReferralStatus.REFUSED}' AND x.reason = 'referral_cycle')"""
    _temp(session, "ref_friends", f"""
      SELECT * FROM ({source}) m
      WHERE m.referred_by IS NOT NULL OR EXISTS (
        SELECT 1 FROM referrals x WHERE x.tenant_id = :t AND x.friend_id = m.friend_id)""",
          {"t": tenant_id}, key="friend_id")


def _find_cycles(session: Session, tenant_id: int) -> None:
    """ref_cycles: the friends in ref_friends whose chain of referrers leads back to them."""
    _temp(session, "ref_cycles", """
      WITH RECURSIVE chain(start_id, start_ext, cur_ext) AS (
        SELECT friend_id, external_id, referred_by FROM ref_friends
        WHERE referred_by IS NOT NULL
        UNION
        SELECT ch.start_id, ch.start_ext,
               (SELECT m.referred_by FROM members m
                WHERE m.tenant_id = :t AND m.external_id = ch.cur_ext)
        FROM chain ch WHERE ch.cur_ext IS NOT NULL AND ch.cur_ext <> ch.start_ext)
      SELECT DISTINCT start_id AS member_id FROM chain WHERE cur_ext = start_ext""",
          {"t": tenant_id})


def record_referrals(session: Session, tenant_id: int, policy: TenantPolicy,
                     ids: list[str] | None, today: dt.date) -> int:
    """Create the referral of every friend in scope (see _friends) and bring the ones that
    have not qualified yet up to date: referrer, terms, window, and the refusals found at
    recording. Leaves `ref_sync` (the friends looked at). Returns how many were created."""
    _friends(session, tenant_id, ids)
    _find_cycles(session, tenant_id)
    index = T.terms_index_sql(policy, "f.joined_at")
    window_days = T.window_days_sql(policy, index)
    window_end = (f"CASE WHEN {index} IS NOT NULL THEN "
                  f"{plus_days(session, 'f.joined_at', window_days, bigint_days=True)} END")
    reasons = ", ".join(f"'{r}'" for r in RECORD_REASONS)
    p = {"t": tenant_id, "today": today}
    _temp(session, "ref_sync", f"""
      SELECT z.*, CASE WHEN z.reason IS NOT NULL THEN '{ReferralStatus.REFUSED}'
                       WHEN z.old_status = '{ReferralStatus.EXPIRED}' AND z.window_end <= :today
                         THEN '{ReferralStatus.EXPIRED}'
                       ELSE '{ReferralStatus.OPEN}' END AS new_status
      FROM (
        SELECT y.*, CASE WHEN y.referred_by IS NULL THEN 'not_referred'
                         WHEN y.referrer_id IS NULL THEN 'unknown_referrer'
                         WHEN y.in_cycle = 1 AND y.standing = 0 THEN 'referral_cycle'
                         WHEN y.joined_at IS NULL THEN 'no_join_date'
                         WHEN y.terms_index IS NULL THEN 'no_terms' END AS reason
        FROM (
          SELECT f.friend_id, f.referred_by, f.joined_at,
                 COALESCE(f.referred_by, x.referrer_external_id) AS referrer_ext,
                 (SELECT rf.id FROM members rf
                  WHERE rf.tenant_id = :t AND rf.external_id = f.referred_by) AS referrer_id,
                 x.id AS referral_id, x.status AS old_status, x.reason AS old_reason,
                 {index} AS terms_index, {window_end} AS window_end,
                 CASE WHEN cy.member_id IS NULL THEN 0 ELSE 1 END AS in_cycle,
                 -- A cycle refuses only the claim that closed it: a referral already
                 -- recorded (and not refused) with this same referrer stands untouched.
                 CASE WHEN x.id IS NOT NULL AND x.status <> '{ReferralStatus.REFUSED}'
                           AND x.referrer_external_id = f.referred_by THEN 1 ELSE 0
                      END AS standing
          FROM ref_friends f
          LEFT JOIN referrals x ON x.tenant_id = :t AND x.friend_id = f.friend_id
          LEFT JOIN ref_cycles cy ON cy.member_id = f.friend_id) y
      ) z
      WHERE z.referral_id IS NULL OR z.old_status IN {sql_in(*UNQUALIFIED)}
         OR (z.old_status = '{ReferralStatus.REFUSED}' AND z.old_reason IN ({reasons}))""", p,
          key=("referral_id", "friend_id"))
    created = session.execute(text("""
      INSERT INTO referrals (tenant_id, friend_id, referrer_external_id, referrer_id, status,
                             reason, terms_index, window_end)
      SELECT :t, friend_id, referrer_ext, referrer_id, new_status, reason, terms_index,
             window_end
      FROM ref_sync WHERE referral_id IS NULL AND referrer_ext IS NOT NULL"""), p).rowcount
    session.execute(text(f"""
      UPDATE referrals SET referrer_external_id = s.referrer_ext, referrer_id = s.referrer_id,
        terms_index = s.terms_index, window_end = s.window_end, status = s.new_status,
        reason = CASE WHEN s.new_status = '{ReferralStatus.EXPIRED}' THEN 'window_ended'
                      ELSE s.reason END,
        updated_at = CURRENT_TIMESTAMP
      FROM ref_sync s
      WHERE referrals.tenant_id = :t AND referrals.id = s.referral_id
        AND (referrals.referrer_external_id IS DISTINCT FROM s.referrer_ext
             OR referrals.referrer_id IS DISTINCT FROM s.referrer_id
             OR referrals.terms_index IS DISTINCT FROM s.terms_index
             OR referrals.window_end IS DISTINCT FROM s.window_end
             OR referrals.status IS DISTINCT FROM s.new_status
             OR referrals.reason IS DISTINCT FROM
                CASE WHEN s.new_status = '{ReferralStatus.EXPIRED}' THEN 'window_ended'
                     ELSE s.reason END)"""),
                    p)
    return created


def members_changed(session: Session, tenant_id: int, external_ids: Iterable[str]) -> None:
    """The hook of upsert_members: record the referrals of the members just written (and of
    the friends who named one of them before they existed), then qualify the ones whose
    purchases are already known (lines attached to a member created after them)."""
    ids = sorted(set(external_ids))
    if not ids:
        return
    policy = _policy(session, tenant_id)
    today = local_today(policy)
    _lock(session, tenant_id)
    record_referrals(session, tenant_id, policy, ids, today)
    _temp(session, "ref_scope", """
      SELECT x.id AS referral_id FROM ref_sync s
      JOIN referrals x ON x.tenant_id = :t AND x.friend_id = s.friend_id""",
          {"t": tenant_id}, key="referral_id")
    _evaluate(session, tenant_id, policy, today)
    _drop(session)


# --- qualifying purchases -----------------------------------------------------------------

def evaluate_referrals(session: Session, tenant_id: int, policy: TenantPolicy, *,
                       today: dt.date, entry_ids: Iterable[int | None] | None = None) -> None:
    """The hook of report processing: settle and grant the bonus pairs of the friends whose
    money the given journal entries moved (None: every referral still in play). `today` is
    the date bonuses are granted on (the report's as-of date in the tenant's timezone)."""
    live = f"status IN {sql_in(*LIVE)}"
    p = {"t": tenant_id}
    if not session.execute(text(f"SELECT 1 FROM referrals WHERE tenant_id = :t AND {live} "
                                "LIMIT 1"), p).first():
        return
    _lock(session, tenant_id)
    if entry_ids is None:
        _temp(session, "ref_scope", f"SELECT id AS referral_id FROM referrals "
                                    f"WHERE tenant_id = :t AND {live}", p, key="referral_id")
    else:
        entries = sorted({int(e) for e in entry_ids if e is not None}) or [0]
        # Every pending pair (checked by its purchase's key), and the open or expired
        # referrals of the friends whose money moved. A friend whose changes in one report
        # cancel out exactly in both buckets is missed here; the sweep looks at everyone.
        _temp(session, "ref_touched", f"""
          SELECT DISTINCT member_id FROM postings
          WHERE tenant_id = :t AND entry_id IN ({', '.join(map(str, entries))})
            AND member_id IS NOT NULL""", p, key="member_id")
        _temp(session, "ref_scope", f"""
          SELECT id AS referral_id FROM referrals
          WHERE tenant_id = :t AND status = '{ReferralStatus.PENDING}'
          UNION
          SELECT r.id FROM referrals r
          WHERE r.tenant_id = :t AND r.{live}
            AND r.friend_id IN (SELECT member_id FROM ref_touched)""", p, key="referral_id")
    _evaluate(session, tenant_id, policy, today)
    _drop(session)


def _memo(outcome: str, s: str) -> str:
    return (f"'referral bonus ' || {outcome} || ': ' || {s}.friend_ext || ' referred by ' || "
            f"{s}.referrer_ext || ' (purchase ' || COALESCE({s}.transaction_id, '?') || ')'")


def _evaluate(session: Session, tenant_id: int, policy: TenantPolicy, today: dt.date) -> None:
    """Settle the pending pairs in `ref_scope`, then grant pairs to the open ones with a
    qualifying purchase."""
    p = {"t": tenant_id, "today": today}
    _settle_pending(session, tenant_id, policy, p)
    _claw_back(session, tenant_id, policy, p)
    _grant(session, tenant_id, policy, today, p)


def _settle_pending(session: Session, tenant_id: int, policy: TenantPolicy, p: dict) -> None:
    """A pending pair is earned when its purchase is confirmed (still meeting the terms),
    and voided when the purchase is reversed, or no longer meets the terms, first."""
    _temp(session, "ref_settle0", f"""
      SELECT r.id AS referral_id, r.commission_id, r.terms_index, r.friend_id, r.referrer_id,
             r.referrer_external_id AS referrer_ext
      FROM ref_scope s JOIN referrals r ON r.tenant_id = :t AND r.id = s.referral_id
      WHERE r.status = '{ReferralStatus.PENDING}'""", p)
    if not _count(session, "SELECT count(*) FROM ref_settle0"):
        return
    minimum = T.minimum_sql(policy, "x.terms_index")
    pending = lambda side, alias: (  # noqa: E731
        f"LEFT JOIN referral_bonuses {alias} ON {alias}.tenant_id = :t "
        f"AND {alias}.referral_id = x.referral_id AND {alias}.commission_id = x.commission_id "
        f"AND {alias}.side = '{side}' AND {alias}.status = '{BonusStatus.PENDING}'")
    # The yearly cap is decided here, when the referrer's bonus is earned: it counts the
    # referrer's bonuses earned in the same calendar year, then this batch's in order of
    # confirmation (DOMAIN.md: by the year earned, not the year of the purchase).
    capping = "CASE WHEN y.outcome = 'confirmed' AND y.referrer_amount IS NOT NULL THEN 1 END"
    cap = T.cap_sql(policy, "y.terms_index")
    _temp(session, "ref_settle", f"""
      SELECT y.*,
        CASE WHEN {capping} = 1 AND {cap} IS NOT NULL
                  AND {_earned_this_year(session, 'y.referrer_id', 'y.earn_year')}
                      + row_number() OVER (
                        PARTITION BY {capping}, y.referrer_id, y.earn_year
                        ORDER BY y.confirmed_on, y.referral_id) > {cap}
             THEN 1 ELSE 0 END AS referrer_capped
      FROM (
        SELECT x.referral_id, x.commission_id, x.referrer_ext, f.external_id AS friend_ext,
               x.friend_id, x.referrer_id, x.terms_index, bf.amount AS friend_amount,
               br.amount AS referrer_amount, c.confirmed_on, c.transaction_id,
               {year_of(session, 'c.confirmed_on')} AS earn_year,
               CASE WHEN c.id IS NULL OR c.status = '{CommissionStatus.REVERSED}'
                         OR c.share_amount <= 0
                         OR c.sale_amount < {minimum} THEN 'voided'
                    WHEN c.status = '{CommissionStatus.CONFIRMED}' THEN 'confirmed' END AS outcome
        FROM ref_settle0 x
        LEFT JOIN commissions c ON c.tenant_id = :t AND c.id = x.commission_id
        LEFT JOIN members f ON f.tenant_id = :t AND f.id = x.friend_id
        {pending('friend', 'bf')}
        {pending('referrer', 'br')}) y
      WHERE y.outcome IS NOT NULL""", p, key="referral_id")
    if not _count(session, "SELECT count(*) FROM ref_settle"):
        return
    key = _key("s.referral_id", "s.commission_id", "s.outcome")
    memo = _memo("s.outcome", "s")
    earned = {"friend": "s.outcome = 'confirmed'",
              "referrer": "s.outcome = 'confirmed' AND s.referrer_capped = 0"}
    sides = " UNION ALL ".join(f"""
      SELECT {key} AS ekey, {memo} AS memo, 'pending' AS account, s.{side}_id AS member_id,
             -s.{side}_amount AS amount FROM ref_settle s WHERE s.{side}_amount IS NOT NULL
      UNION ALL
      SELECT {key}, {memo},
             CASE WHEN {earned[side]} THEN 'available' ELSE 'referral_expense' END,
             CASE WHEN {earned[side]} THEN s.{side}_id END, s.{side}_amount
      FROM ref_settle s WHERE s.{side}_amount IS NOT NULL""" for side in ("friend", "referrer"))
    _post(session, tenant_id, policy.currency, sides, p)
    capped = "referral_bonuses.side = 'referrer' AND s.referrer_capped = 1"
    session.execute(text(f"""
      UPDATE referral_bonuses SET
        status = CASE WHEN s.outcome <> 'confirmed' THEN '{BonusStatus.VOIDED}'
                      WHEN {capped} THEN '{BonusStatus.REFUSED}' ELSE '{BonusStatus.EARNED}' END,
        reason = CASE WHEN {capped} THEN 'referrer_cap_reached' ELSE referral_bonuses.reason END,
        confirmed_on = CASE s.outcome WHEN 'confirmed' THEN s.confirmed_on END,
        confirmed_entry_id = CASE WHEN s.outcome = 'confirmed' AND NOT ({capped})
                                  THEN e.entry_id END,
        voided_entry_id = CASE WHEN s.outcome <> 'confirmed' OR {capped} THEN e.entry_id END
      FROM ref_settle s LEFT JOIN ref_posted e ON e.ekey = {key}
      WHERE referral_bonuses.tenant_id = :t AND referral_bonuses.referral_id = s.referral_id
        AND referral_bonuses.commission_id = s.commission_id
        AND referral_bonuses.status = '{BonusStatus.PENDING}'"""), p)
    # Only the referrer's side was live and the cap refused it: nothing was earned.
    nothing = "s.friend_amount IS NULL AND s.referrer_capped = 1"
    session.execute(text(f"""
      UPDATE referrals SET
        status = CASE WHEN s.outcome <> 'confirmed' THEN '{ReferralStatus.OPEN}'
                      WHEN {nothing} THEN '{ReferralStatus.REFUSED}'
                      ELSE '{ReferralStatus.EARNED}' END,
        reason = CASE WHEN s.outcome = 'confirmed' AND {nothing} THEN 'referrer_cap_reached'
                      ELSE referrals.reason END,
        commission_id = CASE s.outcome WHEN 'confirmed' THEN referrals.commission_id END,
        qualified_on = CASE s.outcome WHEN 'confirmed' THEN referrals.qualified_on END,
        updated_at = CURRENT_TIMESTAMP
      FROM ref_settle s WHERE referrals.tenant_id = :t AND referrals.id = s.referral_id"""), p)


def _claw_back(session: Session, tenant_id: int, policy: TenantPolicy, p: dict) -> None:
    """An earned pair whose purchase was reversed since is clawed back like any reversal
    (the member's available balance goes down, negative if the bonus was paid already;
    the run that nets it shows a correction), unless the terms keep it. The referral is
    then refused: one pair per friend, ever, and buy-and-return must not earn again."""
    keep = T.keep_after_reversal_sql(policy, "r.terms_index")
    _temp(session, "ref_claw", f"""
      SELECT r.id AS referral_id, r.commission_id, r.referrer_external_id AS referrer_ext,
             f.external_id AS friend_ext, c.transaction_id, 'clawed_back' AS outcome
      FROM ref_scope s JOIN referrals r ON r.tenant_id = :t AND r.id = s.referral_id
      JOIN commissions c ON c.tenant_id = :t AND c.id = r.commission_id
      LEFT JOIN members f ON f.tenant_id = :t AND f.id = r.friend_id
      WHERE r.status = '{ReferralStatus.EARNED}' AND c.status = '{CommissionStatus.REVERSED}'
        AND {keep} = 0""", p,
          key="referral_id")
    if not _count(session, "SELECT count(*) FROM ref_claw"):
        return
    key = _key("s.referral_id", "s.commission_id", "'clawed_back'")
    earned = ("FROM ref_claw s JOIN referral_bonuses b ON b.tenant_id = :t "
              "AND b.referral_id = s.referral_id AND b.commission_id = s.commission_id "
              f"AND b.status = '{BonusStatus.EARNED}' AND b.amount <> 0")
    _post(session, tenant_id, policy.currency, f"""
      SELECT {key} AS ekey, {_memo("'clawed back'", "s")} AS memo, 'available' AS account,
             b.member_id, -b.amount AS amount {earned}
      UNION ALL
      SELECT {key}, {_memo("'clawed back'", "s")}, 'referral_expense', NULL, b.amount
      {earned}""", p)
    session.execute(text(f"""
      UPDATE referral_bonuses SET status = '{BonusStatus.CLAWED_BACK}',
        reason = 'purchase_reversed',
        voided_entry_id = e.entry_id
      FROM ref_claw s LEFT JOIN ref_posted e ON e.ekey = {key}
      WHERE referral_bonuses.tenant_id = :t AND referral_bonuses.referral_id = s.referral_id
        AND referral_bonuses.commission_id = s.commission_id
        AND referral_bonuses.status = '{BonusStatus.EARNED}'"""), p)
    session.execute(text(f"""
      UPDATE referrals SET status = '{ReferralStatus.REFUSED}', reason = 'purchase_reversed',
        updated_at = CURRENT_TIMESTAMP
      FROM ref_claw s WHERE referrals.tenant_id = :t AND referrals.id = s.referral_id"""), p)


def _grant(session: Session, tenant_id: int, policy: TenantPolicy, today: dt.date,
           p: dict) -> None:
    """The first purchase of each open (or expired) referral in scope that meets its terms
    and was never tried: a held referral if a guard says so, else a bonus pair."""
    minimum = T.minimum_sql(policy, "r.terms_index")
    _temp(session, "ref_open", f"""
      SELECT x.*, f.joined_at FROM (
        SELECT r.id AS referral_id, r.friend_id, r.referrer_id, r.terms_index, r.review,
               r.referrer_external_id AS referrer_ext, r.window_end, {minimum} AS minimum
        FROM ref_scope s JOIN referrals r ON r.tenant_id = :t AND r.id = s.referral_id
        WHERE r.status IN {sql_in(*UNQUALIFIED)} AND r.referrer_id IS NOT NULL
          AND r.window_end IS NOT NULL) x
      LEFT JOIN members f ON f.tenant_id = :t AND f.id = x.friend_id""", p)
    if not _count(session, "SELECT count(*) FROM ref_open"):
        return
    # The first purchase of each friend that meets the terms and was never tried: one index
    # probe of the friend's commissions per referral.
    _temp(session, "ref_first", f"""
      SELECT o.*, (
        SELECT c.id FROM commissions c
        WHERE c.tenant_id = :t AND c.member_id = o.friend_id
          AND c.status IN {sql_in(CommissionStatus.PENDING, CommissionStatus.CONFIRMED)}
          AND c.share_amount > 0
          AND c.event_date >= o.joined_at AND c.event_date < o.window_end
          AND c.sale_amount >= o.minimum
          AND NOT EXISTS (SELECT 1 FROM referral_bonuses b WHERE b.tenant_id = :t
                          AND b.referral_id = o.referral_id AND b.commission_id = c.id)
        ORDER BY c.event_date, c.id LIMIT 1) AS commission_id
      FROM ref_open o""", p)
    _temp(session, "ref_cand", """
      SELECT o.*, c.transaction_id, c.event_date, c.status AS c_status, c.confirmed_on,
             f.external_id AS friend_ext
      FROM ref_first o
      LEFT JOIN commissions c ON c.tenant_id = :t AND c.id = o.commission_id
      LEFT JOIN members f ON f.tenant_id = :t AND f.id = o.friend_id
      WHERE o.commission_id IS NOT NULL""", p)
    if not _count(session, "SELECT count(*) FROM ref_cand"):
        return
    same = lambda col: f"lower(trim(f.{col})) = lower(trim(rf.{col}))"  # noqa: E731
    # A pair granted on a confirmed purchase is earned at once: on the purchase's
    # confirmation date, or on the review date for a pair approved on review (so that the
    # next run pays it).
    earned_on = (f"CASE WHEN c.c_status <> '{CommissionStatus.CONFIRMED}' THEN NULL "
                 "WHEN c.review = 'approved' AND c.confirmed_on < :today THEN :today "
                 "ELSE c.confirmed_on END")
    _temp(session, "ref_new", f"""
      SELECT c.*, {year_of(session, earned_on)} AS year, {earned_on} AS earned_on,
        CASE WHEN c.review = 'approved' THEN NULL
             WHEN {same('paypal_email')} OR {same('amex_account')} OR {same('bilt_account')}
               THEN 'shared_payout_destination'
             WHEN {same('address_line1')} AND {same('postal_code')}
                  AND lower(trim(COALESCE(f.address_line2, ''))) =
                      lower(trim(COALESCE(rf.address_line2, '')))
                  AND lower(trim(COALESCE(f.city, ''))) = lower(trim(COALESCE(rf.city, '')))
                  AND COALESCE(f.country, '') = COALESCE(rf.country, '')
               THEN 'shared_mailing_address' END AS hold,
        f.bilt_tier AS friend_tier, rf.bilt_tier AS referrer_tier
      FROM ref_cand c
      LEFT JOIN members f ON f.tenant_id = :t AND f.id = c.friend_id
      LEFT JOIN members rf ON rf.tenant_id = :t AND rf.id = c.referrer_id""", p,
          key="referral_id")
    session.execute(text(f"""
      UPDATE referrals SET status = '{ReferralStatus.HELD}', reason = n.hold,
        commission_id = n.commission_id,
        qualified_on = n.event_date, updated_at = CURRENT_TIMESTAMP
      FROM ref_new n
      WHERE referrals.tenant_id = :t AND referrals.id = n.referral_id
        AND n.hold IS NOT NULL"""), p)
    index = "n.terms_index"
    f_cash, f_points, f_method = T.side_sql(policy, index, "friend", today, "n.friend_tier")
    r_cash, r_points, r_method = T.side_sql(policy, index, "referrer", today,
                                            "n.referrer_tier")
    cap = T.cap_sql(policy, index)
    # The cap applies to bonuses earned now (confirmed purchases): the referrer's bonuses
    # earned in the same year, then this batch's in order. A pending pair is capped, or
    # not, when it is earned (_settle_pending).
    existing = _earned_this_year(session, "n.referrer_id", "n.year")
    capping = f"CASE WHEN n.c_status = '{CommissionStatus.CONFIRMED}' THEN 1 END"
    _temp(session, "ref_grant", f"""
      SELECT g.*,
        CASE WHEN g.friend_amount IS NULL OR g.friend_amount <= 0 THEN '{BonusStatus.REFUSED}'
             WHEN g.c_status = '{CommissionStatus.CONFIRMED}' THEN '{BonusStatus.EARNED}'
             ELSE '{BonusStatus.PENDING}' END AS friend_status,
        CASE WHEN g.friend_amount IS NULL THEN 'no_points_rate'
             WHEN g.friend_amount <= 0 THEN 'no_bonus' END AS friend_reason,
        CASE WHEN g.capped = 1 OR g.referrer_amount IS NULL OR g.referrer_amount <= 0
               THEN '{BonusStatus.REFUSED}'
             WHEN g.c_status = '{CommissionStatus.CONFIRMED}' THEN '{BonusStatus.EARNED}'
             ELSE '{BonusStatus.PENDING}' END AS referrer_status,
        CASE WHEN g.capped = 1 THEN 'referrer_cap_reached'
             WHEN g.referrer_amount IS NULL THEN 'no_points_rate'
             WHEN g.referrer_amount <= 0 THEN 'no_bonus' END AS referrer_reason
      FROM (
        SELECT n.*, {f_cash} AS friend_amount, {f_points} AS friend_points,
               {f_method} AS friend_method, {r_cash} AS referrer_amount,
               {r_points} AS referrer_points, {r_method} AS referrer_method,
               CASE WHEN {capping} = 1 AND {cap} IS NOT NULL AND {existing} + row_number()
                      OVER (PARTITION BY {capping}, n.referrer_id, n.year
                            ORDER BY n.earned_on, n.event_date, n.referral_id)
                      > {cap} THEN 1 ELSE 0 END AS capped
        FROM ref_new n WHERE n.hold IS NULL) g""", p, key="referral_id")
    confirmed, pending = CommissionStatus.CONFIRMED, CommissionStatus.PENDING
    transition = f"CASE g.c_status WHEN '{confirmed}' THEN '{confirmed}' ELSE '{pending}' END"
    key = _key("g.referral_id", "g.commission_id", transition)
    memo = _memo(f"CASE g.c_status WHEN '{CommissionStatus.CONFIRMED}' THEN '{BonusStatus.EARNED}' "
                 f"ELSE '{BonusStatus.PENDING}' END", "g")
    live_bonus = sql_in(BonusStatus.PENDING, BonusStatus.EARNED)
    legs = " UNION ALL ".join(f"""
      SELECT {key} AS ekey, {memo} AS memo,
             CASE g.{side}_status WHEN '{BonusStatus.EARNED}' THEN 'available' ELSE 'pending' END
               AS account,
             g.{side}_id AS member_id, g.{side}_amount AS amount
      FROM ref_grant g WHERE g.{side}_status IN {live_bonus}
      UNION ALL
      SELECT {key}, {memo}, 'referral_expense', NULL, -g.{side}_amount
      FROM ref_grant g WHERE g.{side}_status IN {live_bonus}"""
                              for side in ("friend", "referrer"))
    _post(session, tenant_id, policy.currency, legs, p)
    sides = " UNION ALL ".join(f"""
      SELECT :t, g.referral_id, g.commission_id, '{side}', g.{side}_id,
             COALESCE(g.{side}_amount, 0), g.{side}_points, g.{side}_method, g.{side}_status,
             g.{side}_reason, g.event_date,
             CASE WHEN g.{side}_status = '{BonusStatus.EARNED}'
                       OR g.{side}_reason = 'referrer_cap_reached'
                  THEN g.earned_on END,
             CASE WHEN g.{side}_status = '{BonusStatus.PENDING}' THEN e.entry_id END,
             CASE WHEN g.{side}_status = '{BonusStatus.EARNED}' THEN e.entry_id END
      FROM ref_grant g LEFT JOIN ref_posted e ON e.ekey = {key}"""
                               for side in ("friend", "referrer"))
    session.execute(text(f"""
      INSERT INTO referral_bonuses (tenant_id, referral_id, commission_id, side, member_id,
        amount, points, points_method, status, reason, qualified_on, confirmed_on,
        pending_entry_id, confirmed_entry_id)
      {sides}"""), p)
    both_refused = (f"g.friend_status = '{BonusStatus.REFUSED}' "
                    f"AND g.referrer_status = '{BonusStatus.REFUSED}'")
    session.execute(text(f"""
      UPDATE referrals SET
        status = CASE WHEN {both_refused}
                        THEN '{ReferralStatus.REFUSED}'
                      WHEN g.c_status = '{CommissionStatus.CONFIRMED}'
                        THEN '{ReferralStatus.EARNED}'
                      ELSE '{ReferralStatus.PENDING}' END,
        reason = CASE WHEN {both_refused}
                        THEN COALESCE(g.referrer_reason, g.friend_reason) END,
        commission_id = g.commission_id, qualified_on = g.event_date,
        updated_at = CURRENT_TIMESTAMP
      FROM ref_grant g WHERE referrals.tenant_id = :t AND referrals.id = g.referral_id"""), p)


# --- the sweep and the review ---------------------------------------------------------------

def sweep(session: Session, tenant_id: int, today: dt.date | None = None) -> dict:
    """The worker's sweep: record referrals not recorded yet, refresh the ones still open,
    settle and grant whatever is due, then expire the open referrals whose window ended
    before `today` (default: today in the tenant's timezone). Safe to run any time, any
    number of times."""
    policy = _policy(session, tenant_id)
    today = today or local_today(policy)
    _lock(session, tenant_id)
    record_referrals(session, tenant_id, policy, None, today)
    _temp(session, "ref_scope", "SELECT id AS referral_id FROM referrals WHERE tenant_id = :t "
                                f"AND status IN {sql_in(*IN_PLAY)}",
          {"t": tenant_id}, key="referral_id")
    _evaluate(session, tenant_id, policy, today)
    expired = session.execute(text(f"""
      UPDATE referrals SET status = '{ReferralStatus.EXPIRED}', reason = 'window_ended',
        updated_at = CURRENT_TIMESTAMP
      WHERE tenant_id = :t AND status = '{ReferralStatus.OPEN}' AND window_end IS NOT NULL
        AND window_end <= :today"""), {"t": tenant_id, "today": today}).rowcount
    _drop(session)
    statuses = dict(session.execute(text(
        "SELECT status, count(*) FROM referrals WHERE tenant_id = :t GROUP BY status"),
        {"t": tenant_id}).all())
    return {"as_of": today.isoformat(), "expired": expired,
            "statuses": {s: int(statuses.get(s, 0)) for s in STATUSES}}


def sweep_tenant(engine: Engine, tenant_id: int, today: dt.date | None = None) -> dict:
    """The sweep in a transaction of its own (the worker job)."""
    from settlement.db import tenant_session

    with tenant_session(engine, tenant_id) as session:
        result = sweep(session, tenant_id, today)
        session.commit()
        return result


def referral_of(session: Session, tenant_id: int, friend_id: int) -> int | None:
    """The id of the referral of this friend, if any."""
    return session.execute(text(
        "SELECT id FROM referrals WHERE tenant_id = :t AND friend_id = :f"),
        {"t": tenant_id, "f": friend_id}).scalar()


def review(session: Session, tenant_id: int, referral_id: int, decision: str, by: str,
           today: dt.date | None = None) -> None:
    """An operator's decision on a held referral. `approve` lets it qualify despite the
    guard that held it (the first qualifying purchase is looked for again: it may have been
    reversed meanwhile); `reject` refuses it for good."""
    if decision not in ("approve", "reject"):
        raise ReferralError("invalid_decision", "decision is approve or reject")
    policy = _policy(session, tenant_id)
    _lock(session, tenant_id)
    row = session.execute(text(
        "SELECT status FROM referrals WHERE tenant_id = :t AND id = :r"),
        {"t": tenant_id, "r": referral_id}).first()
    if row is None:
        raise ReferralError("not_found", f"no referral {referral_id}")
    if row[0] != ReferralStatus.HELD:
        raise ReferralError("not_held", f"referral {referral_id} is {row[0]}, not held "
                                             f"for review")
    p = {"t": tenant_id, "r": referral_id, "by": by}
    if decision == "reject":
        session.execute(text(f"""
          UPDATE referrals SET status = '{ReferralStatus.REFUSED}', reason = 'rejected_on_review',
            review = 'rejected', reviewed_by = :by, updated_at = CURRENT_TIMESTAMP
          WHERE tenant_id = :t AND id = :r"""), p)
        return
    session.execute(text(f"""
      UPDATE referrals SET status = '{ReferralStatus.OPEN}', reason = NULL, commission_id = NULL,
        qualified_on = NULL, review = 'approved', reviewed_by = :by,
        updated_at = CURRENT_TIMESTAMP
      WHERE tenant_id = :t AND id = :r"""), p)
    _temp(session, "ref_scope", "SELECT CAST(:r AS BIGINT) AS referral_id", p,
          key="referral_id")
    _evaluate(session, tenant_id, policy, today or local_today(policy))
    _drop(session)
