"""Referral bonuses: the referrer and the friend both earn once the friend, who joined through
the referrer's link, makes a qualifying purchase (DOMAIN.md).

Where things are: `terms.py` turns the tenant's referral terms into SQL, `service.py` is the
lifecycle (recording, qualifying, settling, the review, the sweep), `views.py` is what the
API and the demo show. Hooks: catalog.upsert_members calls `members_changed`, report
processing calls `evaluate_referrals` after attaching lines, the worker job
`sweep_referrals` calls `sweep`.

Referrals (one row per friend, ever: `referrals`)
- A member with `referred_by` (and `joined_at`) is a friend; the referral is recorded when
  the member is written. The terms are the ones in force on the join date (terms.py says
  which wins when offers overlap); the window is [joined_at, joined_at + window_days).
- Statuses: `open` (waiting for a qualifying purchase), `pending` (bonuses pending),
  `earned`, `expired` (the window ended with no qualifying purchase), `held` (for review),
  `refused`. Users see `pending` (open or pending), `earned`, `paid` (earned, and a run
  item that succeeded paid that bonus: run_item_lines), `expired`; operators also see held
  and refused, each with a reason code and a sentence (views.REASONS).
- A qualifying purchase is the friend's commission with cash back (share > 0), pending or
  confirmed, dated inside the window, of a sale of at least `minimum_purchase`; the first
  one by event date (then id) that was never tried before.
- It makes both bonuses `pending`; they become `earned` when that commission is confirmed
  (still meeting the terms), and `voided` if it is reversed, or lowered below the minimum,
  before it confirms. The referral is then open again, and a later qualifying purchase in
  the window may qualify instead (a voided commission is never tried again). A return after
  the pair was earned claws both bonuses back (`clawed_back`, reason `purchase_reversed`;
  a negative balance if they were paid, netted by the member's next run) and refuses the
  referral for good, unless the terms say `keep_bonus_after_reversal`: buy and return is
  the common referral fraud. One live pair per referral at a time (a partial unique index)
  and a pair is earned at most once per friend.
- `expired` is set by the sweep. A purchase inside the window that a network reports late
  still qualifies an expired referral (the friend did buy in time).

Guards (each refusal or hold carries a reason code)
- self-referral: refused at the door (members import and PUT, `self_referral`);
- referral cycles (A refers B who, directly or through others, refers A): the claim that
  closes the cycle is refused (`referral_cycle`); a referral already recorded, not
  refused, with the same referrer stands untouched (claims recorded together are all
  refused: none came first); so are a referrer who is not a member
  (`unknown_referrer`, re-checked when that member is created), a friend without
  `joined_at` (`no_join_date`) and a join date no terms cover (`no_terms`);
- a friend who shares the referrer's payout destination (PayPal e-mail, Amex MR account or
  Bilt account) or mailing address is `held` when the purchase qualifies; an operator
  approves (the referral qualifies regardless of that guard; a pair earned then is earned
  on the review date, so the next run pays it) or rejects it (`refused`,
  `rejected_on_review`);
- `cap_per_referrer_per_year`: a referrer earns at most that many referrer bonuses per
  calendar year in which they are earned (the `confirmed_on` date, in the tenant's time
  zone; a purchase of December confirmed in January counts for January's year). The cap is
  decided when a bonus is earned: a pending referrer bonus waits in the pending balance,
  and when its purchase confirms it is earned if the referrer has fewer than the cap of
  earned bonuses that year, else refused (`referrer_cap_reached`, its pending amount back
  to the expense account) while the friend still gets theirs. Bonuses clawed back free
  their place; kept ones do not. Within one batch the earlier confirmations win.

Money (the ledger, kind `referral`)
- A bonus is a journal entry per referral and transition, keyed by its cause:
  `referral:{referral}:{commission}:pending` (member `pending` +bonus, tenant
  `referral_expense` -total), `...:confirmed` (`pending` -> `available`, or straight to
  `available` when the purchase was already confirmed), `...:voided` (`pending` -bonus,
  `referral_expense` +total), `...:clawed_back` (`available` -bonus, `referral_expense`
  +total). The expense account is the contra: balances stay zero-sum.
  All entries of a batch are written by two statements (entries, then every posting).
- An earned bonus sits in the member's `available` bucket like any confirmed earning, so
  the runs pay it through the member's chosen method and the run report lists it (row kind
  `referral_bonus`, frozen at planning); `confirmed_on` is the commission's confirmation
  date (the review date for a pair approved on review).
- Points bonuses (e.g. 5,000 Membership Rewards points to the referrer) are recorded as the
  points owed (`points`, `points_method` on the bonus) and posted as their cash value at
  that method's rate, rounded up (terms.py). A member paid by that method receives at least
  those points; a member paid otherwise receives their cash value. We chose this over
  paying points outside the balance so that one balance, one plan and one payout per
  member stay the rule, and a points bonus can never be paid twice.
"""
