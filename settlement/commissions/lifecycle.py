"""What incoming report lines do to commissions and to the ledger, set-based.

The lines of one report sit in the temporary table `incoming` (see reports/staging.py).
A handful of statements then classify every line at once (inserted, updated, unchanged,
stale, or refused with a reason), resolve the share rule of new lines, write commissions
and their history, and post ONE journal entry for the whole report: one posting per member
and bucket, plus the tenant's receivable and margin. Each commission points at the entry
that carries it. The same SQL runs on PostgreSQL and SQLite; on PostgreSQL a report of
mostly new lines has its plain new lines classified and inserted by one statement
(`insert_new_lines`), and only the others go through `applied`.

A line's ledger effect is a function of its state: pending puts its share in the member's
`pending` bucket, confirmed in `available`, reversed nowhere; the commission is owed by the
network (`network_receivable`) and the rest is `portal_margin`. A change posts the new
effect minus the old one, so a reversal after payout leaves `available` negative (a
claw-back) and replaying anything posts nothing.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.commissions.corrections import (
    ORIGINAL_FIELD,
    record_unmatched,
    release_corrections,
    restate_existing,
    unknown_originals_sql,
)
from settlement.commissions.holds import resolve_holds
from settlement.commissions.rules import best_rule_sql, round_div_sql, share_sql
from settlement.money import network_scale
from settlement.ledger.buckets import account_sql, bucket_sql, unattributed_sql
from settlement.ledger.writer import existing_entry, post_from_select, reserve_entry_id
from settlement.sql import create_temp_table, drop_temp_tables, is_postgres, temp_table
from settlement.states import CommissionStatus

# Outcomes that refuse a line, with the field at fault and the message an integration
# engineer reads. `{txn}` is the line's transaction id.
REFUSALS = {
    "duplicate_transaction": ("transaction_id",
                              "transaction_id appears more than once in this file"),
    "unknown_retailer": ("retailer", "no retailer is known by this id for this source"),
    "member_changed": ("member", "this transaction was reported for another member"),
    "retailer_changed": ("retailer", "this transaction was reported for another retailer"),
    "reinstated": ("status", "a reversed transaction cannot change again; send a new one"),
    "unconfirmed": ("status", "a confirmed transaction cannot go back to pending"),
}
APPLIED = ("inserted", "updated")
# `fold_new_lines`: the smallest report folded (below it the statements that split the lines
# cost more than the fold saves: 20-25 ms against 6 ms at 1,000 lines), and how many of its
# first lines are looked up.
FOLD_MIN_LINES = 10_000
FOLD_SAMPLE_LINES = 1000
# What the readers of `applied` filter and group on (the legs' aggregate is planned on the
# size and groups these give: without them, a sort of every line).
APPLIED_STATISTICS = ("outcome", "status", "old_status", "owner", "awaiting", "old_awaiting")


@dataclass
class ApplyContext:
    tenant_id: int
    report_id: int
    fmt: str
    source: str
    currency: str
    rounding: str
    as_of_us: int
    today: dt.date  # the as-of date in the tenant's timezone (confirmed_on)
    whole_or_nothing: bool = False
    first_error_seq: int = 0
    digits: int = 2  # the currency's minor digits: network units per minor unit follow
    hold_days: int | None = None  # the network's holding period (policy), for unstated lines
    # What staging left (reports/copy_csv.py): `incoming` holds the amounts in minor units
    # as sent, and the distinct keys of the lines are in `sent_keys`.
    staged_by_copy: bool = False


@dataclass
class ApplyResult:
    counts: dict[str, int] = field(default_factory=dict)
    entry_id: int | None = None
    refused: int = 0
    applied: bool = True
    released_entry_id: int | None = None  # corrections whose original this report brought


def _retailer_join(ctx: ApplyContext) -> tuple[str, str]:
    """(join clause, retailer id column): generic lines name our slug, networks their id."""
    if ctx.fmt == "generic":
        return ("LEFT JOIN retailers rt ON rt.tenant_id = :t AND rt.slug = i.retailer", "rt.id")
    return ("LEFT JOIN retailer_network_ids rt ON rt.tenant_id = :t AND rt.source = :fmt "
            "AND rt.external_id = i.retailer", "rt.retailer_id")


def classify(session: Session, ctx: ApplyContext, *, fold: bool = False) -> int:
    """Build `applied`: every incoming line with its outcome, owner, rule and share; with
    `fold`, only the lines that are not plain new lines (`old_lines`, whose size is
    returned): `insert_new_lines` classifies and writes the others in one statement."""
    p = _params(ctx)
    join, retailer_id = _retailer_join(ctx)
    temp_table(session, "dupes", "SELECT transaction_id FROM incoming WHERE 1 = 0"
               if _ids_ascend(session)
               else "SELECT transaction_id FROM incoming GROUP BY transaction_id "
                    "HAVING count(*) > 1", p)
    # The distinct keys first (a few thousand), then their retailers: the join reads those
    # instead of every line; DISTINCT again, as two names may be the same retailer.
    if not ctx.staged_by_copy:
        temp_table(session, "sent_keys",
                   "SELECT DISTINCT retailer, category, event_date FROM incoming", p,
                   analyze="never")
    temp_table(session, "line_keys", f"""
      SELECT DISTINCT {retailer_id} AS retailer_id, i.category, i.event_date
      FROM sent_keys i {join.replace('LEFT ', '')}""", p)
    temp_table(session, "line_rules", best_rule_sql(), p)
    temp_table(session, "unknown_originals", unknown_originals_sql(ctx.fmt), p)
    old_lines = _split_old_lines(session, ctx, p) if fold else 0
    rule_id = "CASE WHEN c.id IS NULL THEN lr.rule_id ELSE c.rule_id END"
    # Lines carry the network's amounts (network units); the ledger's are minor units, each
    # rounded once by the tenant's rule, and the share is rounded once from the precise
    # amounts. margin = rounded commission - share, so the sub-cent remainder of every line
    # is the portal's margin and each entry still sums to zero.
    scale = network_scale(ctx.digits)
    minor = _minor_sql(ctx)
    temp_table(session, "applied", f"""
      SELECT x.*, x.commission - x.share AS margin,
             CASE WHEN x.existing_id IS NULL THEN x.member_id ELSE x.old_member_id END AS owner
      FROM (
        SELECT i.line, i.transaction_id, i.order_id, i.member, i.category, i.event_date,
               i.sale AS sale_precise, i.commission AS commission_precise,
               {minor('i.sale')} AS sale, {minor('i.commission')} AS commission,
               i.status, i.original_txn, i.confirm_after,
               {retailer_id} AS retailer_id, m.id AS member_id,
               c.id AS existing_id, c.status AS old_status, c.share_amount AS old_share,
               c.margin_amount AS old_margin, c.commission_amount AS old_commission,
               c.member_id AS old_member_id, c.awaiting_original AS old_awaiting,
               CASE WHEN u.original_txn IS NULL THEN false ELSE true END AS awaiting,
               CASE WHEN d.transaction_id IS NOT NULL THEN 'duplicate_transaction'
                    WHEN {retailer_id} IS NULL THEN 'unknown_retailer'
                    WHEN c.id IS NULL THEN 'inserted'
                    WHEN c.as_of_us > :as_of THEN 'stale'
                    WHEN c.status = i.status AND c.sale_precise = i.sale
                         AND c.commission_precise = i.commission THEN 'unchanged'
                    WHEN c.member_external_id IS DISTINCT FROM i.member THEN 'member_changed'
                    WHEN c.retailer_id <> {retailer_id} THEN 'retailer_changed'
                    WHEN c.status = '{CommissionStatus.REVERSED}' THEN 'reinstated'
                    WHEN c.status = '{CommissionStatus.CONFIRMED}'
                         AND i.status = '{CommissionStatus.PENDING}'
                      THEN 'unconfirmed'
                    ELSE 'updated' END AS outcome,
               {rule_id} AS rule_id,
               {share_sql('sr', 'i.sale', 'i.commission', 'i.category', ctx.rounding, scale)}
                 AS share
        FROM {"old_lines o JOIN incoming i ON i.line = o.line" if fold else "incoming i"}
        LEFT JOIN dupes d ON d.transaction_id = i.transaction_id
        LEFT JOIN unknown_originals u ON u.original_txn = i.original_txn
        {join}
        LEFT JOIN members m ON m.tenant_id = :t AND m.external_id = i.member
        LEFT JOIN commissions c ON c.tenant_id = :t AND c.source = :source
                               AND c.transaction_id = i.transaction_id
        LEFT JOIN line_rules lr ON lr.retailer_id = {retailer_id}
                               AND lr.category = i.category AND lr.event_date = i.event_date
        LEFT JOIN share_rules sr ON sr.tenant_id = :t AND sr.id = {rule_id}
      ) x""", p, columns=APPLIED_STATISTICS)  # ANALYZE of every column: 0.4 s at 1M lines
    return old_lines


def _minor_sql(ctx: ApplyContext):
    """SQL for a line's amount (`i.sale`, `i.commission`: network units) in minor units,
    rounded once by the tenant's rule; read as sent when the lines were staged in minor
    units (`staged_by_copy`: network units are then minor units times the scale, and
    the division is exact whatever the rule)."""
    scale = network_scale(ctx.digits)

    def minor(units: str) -> str:
        if ctx.staged_by_copy:
            return f"{units}_minor"
        return round_div_sql(units, scale, ctx.rounding)
    return minor


def _split_old_lines(session: Session, ctx: ApplyContext, p: dict) -> int:
    """`old_lines`, and how many: the lines that need every branch of the classification,
    because they may be refused (a repeated id, an unknown retailer), restate a commission
    we have, or wait for their original. The others are plain new lines."""
    join, retailer_id = _retailer_join(ctx)
    temp_table(session, "unknown_retailers", f"""
      SELECT DISTINCT i.retailer FROM sent_keys i {join}
      WHERE {retailer_id} IS NULL AND i.retailer IS NOT NULL""", p, analyze="never")
    # One scan of the lines against three small sets, and the lines we have already; each
    # is a probe or a join that finds nothing for a report of new lines.
    rows = temp_table(session, "old_lines", """
      SELECT i.line FROM incoming i
      WHERE i.retailer IS NULL OR i.retailer IN (SELECT retailer FROM unknown_retailers)
         OR i.transaction_id IN (SELECT transaction_id FROM dupes)
         OR i.original_txn IN (SELECT original_txn FROM unknown_originals)
      UNION
      SELECT i.line FROM incoming i
      JOIN commissions c ON c.tenant_id = :t AND c.source = :source
                        AND c.transaction_id = i.transaction_id""", p, analyze="when_large")
    return 1 if rows is None or rows < 0 else rows  # unknown: assume some


def fold_new_lines(session: Session, ctx: ApplyContext) -> bool:
    """Whether the plain new lines are classified and written in one statement
    (`insert_new_lines`) instead of through `applied`: on PostgreSQL (a data-modifying
    WITH), when lines that fail refuse the report line by line, for a report of at least
    FOLD_MIN_LINES lines (as `incoming`'s statistics count them), and when most of its
    first lines are new to us. A report that restates commissions we have is classified
    whole: splitting it would look its lines up twice."""
    if not is_postgres(session) or ctx.whole_or_nothing:
        return False
    lines = session.execute(text(
        "SELECT reltuples FROM pg_class WHERE oid = 'pg_temp.incoming'::regclass")).scalar()
    if lines is None or lines < FOLD_MIN_LINES:
        return False
    sampled, known = session.execute(text(f"""
      SELECT count(*), count(c.id) FROM (SELECT transaction_id FROM incoming
                                         LIMIT {FOLD_SAMPLE_LINES}) i
      LEFT JOIN commissions c ON c.tenant_id = :t AND c.source = :source
                             AND c.transaction_id = i.transaction_id"""), _params(ctx)).one()
    return 2 * known <= sampled


def insert_new_lines(session: Session, ctx: ApplyContext, entry_id: int,
                     old_lines: int) -> tuple[int, int]:
    """Classify and insert the plain new lines (every line but the `old_lines` ones) in
    ONE statement, pointing at `entry_id` (reserved: the legs are only known once the lines
    are written), and leave their effects by member and status in `new_effects`. The
    lines are read once and never copied to `applied`. Returns (inserted, unattributed).
    With no old lines the statement does not look for them: an empty table probed once
    per line cost 0.6 s at 1M lines."""
    join, retailer_id = _retailer_join(ctx)
    scale = network_scale(ctx.digits)
    minor = _minor_sql(ctx)
    # Each distinct (retailer, category, date) sent, with its retailer and the terms of
    # its rule: one join per line instead of three (retailer, rule, share rule). LEFT,
    # although every line here has its key: a line that found none would fail on its
    # missing retailer rather than go missing, and an inner join is estimated at a
    # fraction of the lines (the share rules were then joined in a loop, 0.9 s at 1M).
    temp_table(session, "line_terms", f"""
      SELECT k.retailer AS sent_retailer, k.category AS sent_category,
             k.event_date AS sent_date, {retailer_id} AS retailer_id, sr.id, sr.kind,
             sr.rate_ppm, sr.amount, sr.category_only, sr.category
      FROM sent_keys k {join.replace("i.retailer", "k.retailer").replace('LEFT ', '')}
      LEFT JOIN line_rules lr ON lr.retailer_id = {retailer_id}
                             AND lr.category = k.category AND lr.event_date = k.event_date
      LEFT JOIN share_rules sr ON sr.tenant_id = :t AND sr.id = lr.rule_id""",
               _params(ctx), analyze="when_large")
    create_temp_table(session, "new_effects", "(member_id BIGINT, status TEXT, share BIGINT, "
                                              "commission BIGINT, margin BIGINT, lines BIGINT, "
                                              "first_id BIGINT, last_id BIGINT)")
    session.execute(text(f"""
      WITH written AS (
        {_insert_commissions_sql(margin="commission - share", awaiting="false")}
        FROM (
          SELECT i.line, i.transaction_id, i.order_id, i.original_txn, i.member, i.category,
                 i.event_date, i.status, i.confirm_after, m.id AS member_id,
                 sr.retailer_id, sr.id AS rule_id,
                 i.sale AS sale_precise, i.commission AS commission_precise,
                 {minor('i.sale')} AS sale, {minor('i.commission')} AS commission,
                 {share_sql('sr', 'i.sale', 'i.commission', 'i.category', ctx.rounding, scale)}
                   AS share
          FROM incoming i
          LEFT JOIN line_terms sr ON sr.sent_retailer = i.retailer
                            AND sr.sent_category = i.category AND sr.sent_date = i.event_date
          LEFT JOIN members m ON m.tenant_id = :t AND m.external_id = i.member
          {"WHERE NOT EXISTS (SELECT 1 FROM old_lines o WHERE o.line = i.line)"
           if old_lines else ""}) x
        RETURNING id, member_id, status, share_amount, commission_amount, margin_amount)
      INSERT INTO new_effects
      SELECT member_id, status, sum(share_amount), sum(commission_amount), sum(margin_amount),
             count(*), min(id), max(id)
      FROM written GROUP BY member_id, status"""), {**_params(ctx), "e": entry_id})
    inserted, unattributed = session.execute(text(
        "SELECT coalesce(sum(lines), 0), coalesce(sum(CASE WHEN member_id IS NULL "
        "THEN lines ELSE 0 END), 0) FROM new_effects")).one()
    return int(inserted), int(unattributed)


def _unlink_new_lines(session: Session, ctx: ApplyContext, entry_id: int) -> None:
    """The plain new lines point at the reserved entry; when their effects cancel out (or
    they carry no money) no entry is written, and they point at none, as in `applied`."""
    session.execute(text("""
      UPDATE commissions SET entry_id = NULL
      WHERE tenant_id = :t AND entry_id = :e
        AND id BETWEEN (SELECT min(first_id) FROM new_effects)
                   AND (SELECT max(last_id) FROM new_effects)"""),
                    {**_params(ctx), "e": entry_id})


def _ids_ascend(session: Session) -> bool:
    """Whether the staged transaction ids strictly ascend in the order a scan reads them:
    then none repeats. Networks export sorted by id, and one pass comparing each id with
    the one before costs a third of grouping a million ids (0.3 s of CPU against 0.8 s);
    any other file is grouped."""
    return session.execute(text("""
      SELECT count(*) FROM (
        SELECT transaction_id, lag(transaction_id) OVER () AS before FROM incoming) x
      WHERE transaction_id <= before""")).scalar_one() == 0


def _params(ctx: ApplyContext) -> dict:
    return {"t": ctx.tenant_id, "r": ctx.report_id, "fmt": ctx.fmt, "source": ctx.source,
            "as_of": ctx.as_of_us, "cur": ctx.currency, "today": ctx.today}


def outcome_counts(session: Session) -> dict[str, int]:
    """Lines per outcome, and `unattributed`: the new lines whose member we don't know yet
    (one scan of `applied` for both)."""
    rows = session.execute(text(
        "SELECT outcome, count(*), sum(CASE WHEN member_id IS NULL THEN 1 ELSE 0 END) "
        "FROM applied GROUP BY outcome")).all()
    counts = {outcome: int(n) for outcome, n, _ in rows}
    counts["unattributed"] = next((int(u) for outcome, _, u in rows if outcome == "inserted"), 0)
    return counts


def record_refusals(session: Session, ctx: ApplyContext, counts: dict[str, int]) -> int:
    if not any(counts.get(outcome) for outcome in REFUSALS):
        return 0  # nothing refused: no need to read every line again
    fields = " ".join(f"WHEN '{o}' THEN '{f}'" for o, (f, _) in REFUSALS.items())
    messages = " ".join(f"WHEN '{o}' THEN '{m}'" for o, (_, m) in REFUSALS.items())
    codes = ", ".join(f"'{o}'" for o in REFUSALS)
    result = session.execute(text(f"""
      INSERT INTO report_errors (tenant_id, report_id, seq, line, field, code, message)
      SELECT :t, :r, :seq0 + row_number() OVER (ORDER BY line), line,
             CASE outcome {fields} END, outcome,
             'transaction ' || transaction_id || ': ' || CASE outcome {messages} END
      FROM applied WHERE outcome IN ({codes})"""), {**_params(ctx), "seq0": ctx.first_error_seq})
    return result.rowcount


def _member_effects(where: str, prefix: str, sign: str) -> str:
    """(account, member, amount, commission, margin) of the lines matching `where`, in state
    `{prefix}status`, with `sign`."""
    status = f"{prefix}status"
    return f"""
      SELECT {account_sql(status, "owner")} AS account, owner AS member_id, {sign}{prefix}share AS amount,
             {sign}{prefix}commission AS commission, {sign}{prefix}margin AS margin
        FROM applied WHERE {where} AND {status} <> '{CommissionStatus.REVERSED}'"""


def _legs_sql(updates: bool, folded: bool = False) -> str:
    """The report's postings: each member bucket's new effects minus its old ones, and the
    tenant's receivable and margin (the sums of the same lines' commissions and margins),
    in one pass over the lines; the old effects only when lines were updated, and the
    plain new lines' effects from `new_effects` when they were folded."""
    # A correction awaiting its original carries no money (commissions/corrections.py).
    new = "outcome IN ('inserted', 'updated') AND NOT awaiting"
    old = "outcome = 'updated' AND NOT old_awaiting"
    effects = _member_effects(new, "", "")
    if updates:
        effects += " UNION ALL " + _member_effects(old, "old_", "-")
    if folded:
        effects += f"""
      UNION ALL
      SELECT {account_sql("status", "member_id")}, member_id, share, commission, margin
        FROM new_effects WHERE status <> '{CommissionStatus.REVERSED}'"""
    return f"""
      WITH buckets AS (
        SELECT account, member_id, sum(amount) AS amount, sum(commission) AS commission,
               sum(margin) AS margin
        FROM ({effects}) e GROUP BY account, member_id)
      SELECT account, member_id, amount FROM buckets WHERE amount <> 0
      UNION ALL SELECT 'network_receivable', NULL, -commission
        FROM (SELECT sum(commission) AS commission FROM buckets) t WHERE commission <> 0
      UNION ALL SELECT 'portal_margin', NULL, margin
        FROM (SELECT sum(margin) AS margin FROM buckets) t WHERE margin <> 0"""


def report_number(session: Session, tenant_id: int, report_id: int) -> int | None:
    """The tenant's number of the report: memos are read in members' statements."""
    return session.execute(text("SELECT number FROM reports WHERE tenant_id = :t AND id = :r"),
                           {"t": tenant_id, "r": report_id}).scalar()


def post_report_entry(session: Session, ctx: ApplyContext, counts: dict[str, int], *,
                      reserved: int | None = None) -> int | None:
    """One entry for the whole report: the new effects minus the old ones; under the
    `reserved` entry id when the plain new lines were folded (they point at it)."""
    # Read by one aggregate that has no plan to choose: no statistics.
    temp_table(session, "legs", _legs_sql(bool(counts.get("updated")), reserved is not None),
               _params(ctx), analyze="never")
    if session.execute(text("SELECT count(*) FROM legs")).scalar_one() == 0:
        return None
    key = f"report:{ctx.report_id}"
    if existing_entry(session, ctx.tenant_id, key) is not None:
        raise RuntimeError(f"report {ctx.report_id} was already applied")
    return post_from_select(
        session, ctx.tenant_id, key, "report",
        f"report {report_number(session, ctx.tenant_id, ctx.report_id)}",
        currency=ctx.currency, legs_sql="SELECT account, member_id, amount FROM legs",
        params={}, skip_if_empty=False, entry_id=reserved)


def write_commissions(session: Session, ctx: ApplyContext, entry_id: int | None,
                      counts: dict[str, int]) -> None:
    """Insert the new lines and the history of the updated ones; a statement whose outcome
    no line has is not run (it would read every line to find none). The `updated` and
    `unchanged` lines themselves: commissions/corrections.py, restate_existing."""
    p = {**_params(ctx), "e": entry_id}
    if counts.get("inserted"):
        _insert_commissions(session, p)
    if counts.get("updated"):
        session.execute(text("""
          INSERT INTO commission_events (tenant_id, commission_id, kind, report_id, line,
            entry_id, old_status, new_status, old_share, new_share, old_commission,
            new_commission)
          SELECT :t, existing_id, 'updated', :r, line, :e, old_status, status, old_share,
                 share, old_commission, commission
          FROM applied WHERE outcome = 'updated'"""), p)


def _insert_commissions_sql(margin: str, awaiting: str) -> str:
    """INSERT INTO commissions ... SELECT of new lines, from a source (FROM: the caller's)
    with the classification's columns; `margin` and `awaiting` are that source's."""
    return f"""
      INSERT INTO commissions (tenant_id, source, transaction_id, order_id,
        original_transaction_id, member_external_id, member_id, retailer_id, category,
        event_date, sale_amount, commission_amount, sale_precise, commission_precise,
        share_amount, margin_amount, currency,
        status, rule_id, as_of_us, report_id, line, entry_id, confirmed_on, confirm_after,
        awaiting_original, version)
      SELECT :t, :source, transaction_id, order_id, original_txn, member, member_id,
        retailer_id, NULLIF(category, ''), event_date, sale, commission, sale_precise,
        commission_precise, share, {margin}, :cur,
        status, rule_id, :as_of, :r, line, :e,
        CASE WHEN status = '{CommissionStatus.CONFIRMED}' THEN :today END,
        confirm_after, {awaiting}, 1"""


def _insert_commissions(session: Session, p: dict) -> None:
    session.execute(text(_insert_commissions_sql(margin="margin", awaiting="awaiting")
                         + " FROM applied WHERE outcome = 'inserted'"), p)


def drop_temps(session: Session, *names: str) -> None:
    names = names or ("incoming", "dupes", "sent_keys", "line_keys", "line_rules",
                      "line_terms", "unknown_originals", "unknown_retailers", "old_lines", "applied",
                      "new_effects", "legs")
    drop_temp_tables(session, *names)


def apply_incoming(session: Session, ctx: ApplyContext, parse_errors: int) -> ApplyResult:
    """Classify the staged lines and apply them; in whole-or-nothing mode any refused line
    (or any parse error) leaves everything unapplied."""
    resolve_holds(session, ctx.tenant_id, ctx.fmt, ctx.hold_days, ctx.today)
    fold = fold_new_lines(session, ctx)
    old_lines = classify(session, ctx, fold=fold)
    counts = outcome_counts(session)
    in_applied = dict(counts)  # what write_commissions and restate_existing find in `applied`
    reserved = None
    if fold:
        reserved = reserve_entry_id(session)
        inserted, unattributed = insert_new_lines(session, ctx, reserved, old_lines)
        counts["inserted"] = counts.get("inserted", 0) + inserted
        counts["unattributed"] += unattributed
    refused = record_refusals(session, ctx, counts)
    # Only a format with corrections has lines awaiting their original (corrections.py).
    counts["unmatched"] = record_unmatched(session, _params(ctx), ctx.fmt,
                                           ctx.first_error_seq + refused) \
        if ctx.fmt in ORIGINAL_FIELD else 0
    result = ApplyResult(counts=counts, refused=refused)
    if ctx.whole_or_nothing and (refused or parse_errors):
        result.applied = False
        drop_temps(session)
        return result
    result.entry_id = post_report_entry(session, ctx, counts, reserved=reserved)
    if reserved is not None and result.entry_id is None:
        _unlink_new_lines(session, ctx, reserved)
    write_commissions(session, ctx, result.entry_id, in_applied)
    restate_existing(session, _params(ctx), in_applied)
    if _corrections_waiting(session, ctx):
        result.released_entry_id = release_corrections(session, _params(ctx))
    drop_temps(session)
    return result


def _corrections_waiting(session: Session, ctx: ApplyContext) -> bool:
    """Whether any commission of the report's source waits for its original: one probe of
    the partial index, where looking for released ones scans every commission of the source
    (a million after a first big report, on statistics that still say the table is empty)."""
    return session.execute(text(
        "SELECT 1 FROM commissions WHERE tenant_id = :t AND source = :source "
        "AND awaiting_original LIMIT 1"), _params(ctx)).first() is not None


def attach_unattributed(session: Session, tenant_id: int, currency: str,
                        cause: str) -> int | None:
    """Move the shares of lines that arrived before their member from the unattributed
    accounts to the member, and attribute the lines. Returns the entry id, if any money
    moved. Idempotent: a second call finds nothing left to attach."""
    p = {"t": tenant_id, "cur": currency}
    temp_table(session, "attach", """
      SELECT c.id AS commission_id, m.id AS member_id, c.status, c.share_amount AS share,
             c.commission_amount AS commission
      FROM commissions c JOIN members m
        ON m.tenant_id = c.tenant_id AND m.external_id = c.member_external_id
      WHERE c.tenant_id = :t AND c.member_id IS NULL AND NOT c.awaiting_original""", p)
    rows = session.execute(text("SELECT count(*), min(commission_id) FROM attach")).one()
    if rows[0] == 0:
        drop_temps(session, "attach")
        return None
    legs = f"""
      SELECT account, member_id, sum(amount) AS amount FROM (
        SELECT {bucket_sql("status")} AS account, member_id, share AS amount FROM attach
         WHERE status <> '{CommissionStatus.REVERSED}'
        UNION ALL
        SELECT {unattributed_sql("status")}, NULL, -share FROM attach
         WHERE status <> '{CommissionStatus.REVERSED}'
      ) e GROUP BY account, member_id HAVING sum(amount) <> 0"""
    entry_id = post_from_select(session, tenant_id, f"attach:{cause}:{rows[1]}", "attach",
                                f"lines attributed to members ({cause})",
                                currency=currency, legs_sql=legs, params=p)
    session.execute(text("""
      INSERT INTO commission_events (tenant_id, commission_id, kind, report_id, line, entry_id,
        old_status, new_status, old_share, new_share, old_commission, new_commission)
      SELECT :t, commission_id, 'attached', NULL, NULL, :e, status, status, share, share,
             commission, commission FROM attach"""), {**p, "e": entry_id})
    session.execute(text("""
      UPDATE commissions SET member_id = a.member_id FROM attach a
      WHERE commissions.tenant_id = :t AND commissions.id = a.commission_id"""), p)
    drop_temps(session, "attach")
    return entry_id
