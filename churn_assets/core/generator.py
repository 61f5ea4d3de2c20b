"""Synthetic landing zone: billing extracts and clickstream objects that follow LANDING.md.

The generator exists so that every part of the pipeline can be exercised end to end on
data with known answers: the messiness the contract allows (shuffled and re-cased CSV
headers, unknown columns, every boolean spelling, stray whitespace in ids, two record
shapes, JSON encoded as a string, time zone offsets, duplicates, late arrivals, bad
records) and a churn signal an XGBoost model can learn from 28 days of features.

It is pure: nothing is written except through the ``write`` (and optional ``delete``)
callback, in the order a real producer would write (clickstream objects in arrival
order, each billing day's parts before its ``_SUCCESS``, both streams interleaved by
the time they would land). The same config gives byte-identical output (gzip mtime 0,
numpy generators seeded per purpose and per day, object uuids drawn from them).

Simulated world
    Customers sign up over time (most before ``start``, ids ``C%07d`` in signup order).
    Each active customer may enter an "at risk" phase whose hazard is higher for young
    tenure (cohort age), for plan ``basic`` and for low engagement. At risk, site visits
    fall towards the cancellation day, subscribe-button hovers rise while subscribe
    clicks vanish, and support calls (billing ``support_calls``) and support contacts
    (clickstream) rise; most at-risk customers cancel 7-42 days later, some recover.
    About 40% of cancellations are followed by a re-activation, roughly half of them
    within the 30-day grace period, the rest after it, and some re-activated accounts
    cancel again within three weeks (cancel, re-activate, cancel). Cancelled accounts
    produce almost no clickstream. Each account changes ``cancelled_at`` /
    ``reactivated_at`` at most once per day.

Faults (``Fault(kind, day)``, each applied to that day; parse with :func:`parse_fault`)
    ``missing_billing``
        No billing file at all for the day (the extract job silently did not run).
    ``billing_no_success``
        The day's parts are written but never its ``_SUCCESS`` marker.
    ``billing_redelivery``
        The day is delivered in three parts with ``_SUCCESS``, the first delivery
        carrying detectable errors (five rows with a negative ``mrr`` and three
        customer ids appearing twice). On D+2 at 11:00 UTC (after the extract of D+1)
        it is delivered again, corrected: the same part names are overwritten, and
        when a ``delete`` callback is given the re-delivery has two parts and
        ``part-00002`` is deleted; a new ``_SUCCESS`` is written last.
    ``clickstream_outage``
        No clickstream object arrives during the day (arrival 00:00 to 24:00 UTC); the
        records that would have arrived then are lost.
    ``volume_drop``
        Half of the customers (chosen at random) produce no events of that event date.
    ``malformed_burst``
        3,000 extra ``invalid_json`` lines in the objects arriving during one hour of
        the day.
    ``schema_renamed_column``
        Column ``mrr`` is named ``monthly_revenue`` in every part of the day.
    ``schema_missing_column``
        Column ``seats`` is absent from every part of the day.
    ``schema_new_column``
        An extra column ``loyalty_tier`` (unknown to the contract) in every part.
    ``late_events``
        300 events of that event date (or all, if fewer) are taken out of their normal
        objects and delivered in one object arriving at D+2 between 09:00 and 13:00 UTC,
        i.e. beyond the lateness window (the pipeline must count them as ``late``).
    ``bad_lines_burst``
        Extra bad lines, ``MessProfile.burst`` (5%) of the lines arriving during the day,
        in the profile's mix of reasons, on top of the everyday ones: 2% becomes about 7%.

    Faults combine; ``missing_billing`` wins over the other billing faults of its day.
    Each fault draws from its own random generator: with and without a fault, every key
    outside the fault's reach (its billing day, or the objects arriving on / around its
    day) is byte-identical and written in the same order.

Normal operation also plants, every day, the mess of its :class:`MessProfile` (a producer
like any other, not a clean one): bad lines (about 2% of the lines by default:
``invalid_json``, ``unknown_shape``, ``bad_timestamp``, ``unknown_event_type``, and a few
records whose clock is days ahead, ``future``; each at least once per run), duplicates
(~1.2% of attributed events, half repeated in the same object, half in the next object),
anonymous events (~11% of events: null, absent or whitespace-only ids), and a handful of
events that arrive after their 2-hour lateness window (``late``). Normal lateness keeps every
other event of date D in objects arriving before D+1 02:00. The
:class:`GenerationSummary` carries the counts the pipeline's accounting should reproduce.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np

from churn_assets.core.billing import BILLING_COLUMNS

FAULT_KINDS: tuple[str, ...] = (
    "missing_billing",
    "billing_no_success",
    "billing_redelivery",
    "clickstream_outage",
    "volume_drop",
    "malformed_burst",
    "schema_renamed_column",
    "schema_missing_column",
    "schema_new_column",
    "late_events",
    "bad_lines_burst",
)


MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
LATENESS_MS = 2 * MS_PER_HOUR  # the contract's default lateness window
NONE_DAY = -(10**6)  # "no date" in day-index arrays
_EPOCH = date(1970, 1, 1)
_GZIP_LEVEL = 1  # fast; ~10% larger objects than level 6

# Reasons of planted bad lines, in the contract's vocabulary.
BAD_LINE_REASONS: tuple[str, ...] = (
    "invalid_json",
    "unknown_shape",
    "bad_timestamp",
    "unknown_event_type",
    "future",
)


@dataclass(frozen=True)
class Fault:
    """One injected upstream failure: ``kind`` (see :data:`FAULT_KINDS`) on ``day``."""

    kind: str
    day: date


@dataclass(frozen=True)
class MessProfile:
    """The everyday mess of the clickstream, as shares (0.02 = 2%).

    The bad-line shares are of the lines written, per quarantine reason; the default is
    about 2% of bad lines in all, as real producers send every day. ``duplicates`` is the
    share of attributed events delivered twice, ``late`` the share of events arriving after
    their lateness window, ``anonymous`` the share of events without a customer id.
    ``burst`` is the share of extra bad lines (same mix of reasons) that a
    ``bad_lines_burst`` fault adds to the objects arriving on its day.
    """

    invalid_json: float = 0.008
    unknown_shape: float = 0.004
    bad_timestamp: float = 0.005
    unknown_event_type: float = 0.003
    future: float = 0.0002
    duplicates: float = 0.012
    late: float = 2.5e-4
    anonymous: float = 0.12 / 1.12
    burst: float = 0.05

    def __post_init__(self) -> None:
        shares = [*self.bad_line_shares.values(), self.duplicates, self.late, self.burst]
        if not all(0.0 <= s < 1.0 for s in [*shares, self.anonymous]) or self.bad_lines >= 1:
            raise ValueError(f"mess profile shares must be in [0, 1): {self}")

    @property
    def bad_line_shares(self) -> dict[str, float]:
        """Share of the lines written, per reason (the order of BAD_LINE_REASONS)."""
        return {reason: getattr(self, reason) for reason in BAD_LINE_REASONS}

    @property
    def bad_lines(self) -> float:
        return sum(self.bad_line_shares.values())

    def with_bad_lines(self, share: float) -> MessProfile:
        """The same mix of reasons, scaled to ``share`` of the lines in all."""
        total = self.bad_lines
        scale = share / total if total else 0.0
        mix = {r: v * scale for r, v in self.bad_line_shares.items()} if total else {}
        return replace(self, **(mix or {"invalid_json": share}))


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``horizon_days``/``grace_days`` only feed the summary's label counts."""

    start: date
    days: int
    customers: int = 2000
    seed: int = 7
    events_per_active_customer_day: float = 6.0
    faults: tuple[Fault, ...] = ()
    horizon_days: int = 30
    grace_days: int = 30
    mess: MessProfile = MessProfile()


@dataclass(frozen=True)
class GenerationSummary:
    """Counts of what was written, so tests can compare the pipeline's accounting to truth.

    Clickstream counts are over lines actually written (after outages). ``*_by_day`` dicts
    are keyed by ISO event date and use the contract's default 2-hour lateness window:
    ``valid_by_day`` = distinct attributed events of that date whose first copy arrived
    inside the window, ``duplicate_by_day`` = further copies inside the window,
    ``anonymous_by_day`` = anonymous lines inside the window; ``quarantined_by_day`` is keyed
    by the *arrival* date of the objects (the partition that quarantines them) and holds
    reason -> count, including ``late`` and ``future``. Late lines and the ``late_events``
    object may arrive after the last generated day. Labels are computed from the
    simulated history for every day whose label is final within the generated range.
    """

    billing_days: int
    billing_parts: int
    billing_rows: int
    billing_deletes: int
    clickstream_objects: int
    clickstream_lines: int
    events: int
    events_by_shape: dict[str, int]
    attributed_events: int
    anonymous_lines: int
    duplicates: int
    duplicates_same_object: int
    duplicates_cross_object: int
    bad_lines: dict[str, int]
    late_beyond_window: int
    lost_in_outage: int  # lines (events and bad lines) that never arrived
    valid_by_day: dict[str, int]
    duplicate_by_day: dict[str, int]
    anonymous_by_day: dict[str, int]
    quarantined_by_day: dict[str, dict[str, int]]
    faults_applied: tuple[str, ...]
    active_customer_days: int  # customer-days active at some point of the day
    cancellations: int
    reactivations: int
    reactivations_within_grace: int
    labelled_customer_days: int
    true_churn_labels: int
    naive_churn_labels: int
    keys_written: int


def parse_fault(text: str) -> Fault:
    """Parse ``"kind:YYYY-MM-DD"`` (the CLI's ``--fault`` syntax) into a :class:`Fault`."""
    kind, sep, day_text = text.strip().partition(":")
    if not sep:
        raise ValueError(f"fault {text!r}: expected 'kind:YYYY-MM-DD'")
    kind = kind.strip()
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault {text!r}: unknown kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    try:
        day = date.fromisoformat(day_text.strip())
    except ValueError as exc:
        raise ValueError(f"fault {text!r}: bad date {day_text!r}") from exc
    return Fault(kind, day)


# --------------------------------------------------------------------------------------
# Population and billing history
# --------------------------------------------------------------------------------------

_PLANS = ("basic", "plus", "pro")
_PLAN_PROBS = (0.5, 0.3, 0.2)
_PLAN_HAZARD = np.array([1.25, 1.0, 0.85])
_SEAT_PRICE_CENTS = np.array([1200, 2500, 4500])
_TZ_MINUTES = np.array([0, 60, 120, -300, -240, -420, 330, 540, 600, -180])
_TZ_PROBS = np.array([0.16, 0.2, 0.12, 0.14, 0.08, 0.06, 0.08, 0.06, 0.05, 0.05])

_NAME_HEADS = np.array(
    [
        "Acme", "Müller", "Nordwind", "Søren", "Łukasz", "Café Olé", "Zürich Data", "Blue River",
        "O'Brien", "Öztürk", "Élan", "Kraków Soft", "Straßenbau", "Bjørn", "Núñez", "Väst",
        "Hoffmann", "Dvořák", "São Paulo", "Ærø", "Green Leaf", "Quantum", "Peña", "Ängel",
    ],
    dtype=object,
)  # fmt: skip
_NAME_MIDS = np.array(
    ["Analytics", "Logistik", "Systems", "Bäckerei", "Consulting", "Labs", "Médical", "Trading"],
    dtype=object,
)
_NAME_TAILS = np.array(
    ["GmbH", "Inc.", "Ltd", "& Söhne", "S.A.", "AB", "Sp. z o.o.", "BV", "SAS", "Oy"],
    dtype=object,
)


@dataclass
class _Population:
    n: int
    id_num: np.ndarray  # int64, numeric part of the customer id
    signup: np.ndarray  # int64 day index relative to start
    plan: np.ndarray  # int64 code into _PLANS
    seats: np.ndarray  # int64
    mrr_cents: np.ndarray  # int64
    engagement: np.ndarray  # float64, mean 1
    app_share: np.ndarray  # float64, probability an event comes from the app
    tz: np.ndarray  # int64 code into _TZ_MINUTES
    names: np.ndarray  # object (str)
    ids: np.ndarray  # object (str), canonical "C%07d"
    mrr_text: np.ndarray  # object (str), "123.45"


def _make_population(rng: np.random.Generator, n: int, days: int, prestart: float) -> _Population:
    """Customers in signup order; ``prestart`` of them signed up before day 0."""
    before = rng.random(n) < prestart
    back = np.floor(rng.random(n) ** 1.3 * 1000).astype(np.int64)
    during = np.floor(rng.random(n) * max(days, 1)).astype(np.int64)
    signup = np.sort(np.where(before, -1 - back, during))
    plan = rng.choice(3, size=n, p=_PLAN_PROBS)
    geo = rng.geometric(np.array([0.5, 0.15, 0.04])[plan])
    seats = np.minimum(np.array([0, 1, 4])[plan] + geo, np.array([5, 25, 200])[plan])
    discount = rng.uniform(0.8, 1.0, n)
    mrr_cents = np.round(seats * _SEAT_PRICE_CENTS[plan] * discount).astype(np.int64)
    engagement = rng.lognormal(0.0, 0.55, n)
    engagement /= engagement.mean() if n else 1.0
    mobile = rng.random(n) < 0.3
    app_share = np.where(mobile, rng.uniform(0.6, 0.95, n), rng.uniform(0.0, 0.2, n))
    tz = rng.choice(len(_TZ_MINUTES), size=n, p=_TZ_PROBS)
    h = rng.integers(0, len(_NAME_HEADS), n)
    m = rng.integers(0, len(_NAME_MIDS), n)
    t = rng.integers(0, len(_NAME_TAILS), n)
    pattern = rng.integers(0, 4, n)
    heads, mids, tails = _NAME_HEADS[h], _NAME_MIDS[m], _NAME_TAILS[t]
    names = np.where(
        pattern == 0,
        heads + " " + mids + " " + tails,
        np.where(
            pattern == 1,
            heads + " " + mids + ", " + tails,  # a comma
            np.where(pattern == 2, heads + ' "' + mids + '" ' + tails, heads + " " + tails),
        ),
    )
    id_num = 1000 + np.arange(n, dtype=np.int64) * 7 + rng.integers(0, 7, n)
    ids = np.char.add("C", np.char.zfill(id_num.astype(str), 7)).astype(object)
    return _Population(
        n,
        id_num,
        signup,
        plan,
        seats,
        mrr_cents,
        engagement,
        app_share,
        tz,
        names.astype(object),
        ids,
        _money(mrr_cents),
    )


def _money(cents: np.ndarray) -> np.ndarray:
    """Cents -> "d.cc" strings (vectorised)."""
    whole = (np.abs(cents) // 100).astype(str)
    frac = np.char.zfill((np.abs(cents) % 100).astype(str), 2)
    text = np.char.add(np.char.add(whole, "."), frac)
    return np.where(cents < 0, np.char.add("-", text), text).astype(object)


@dataclass
class _History:
    """Per-day end-of-day billing state (days x customers) and the truth about churn."""

    cancelled_at: np.ndarray  # int64 day index or NONE_DAY
    reactivated_at: np.ndarray
    cancelled_service: np.ndarray  # bool
    new_customer: np.ndarray  # bool
    support_calls: np.ndarray  # int64
    active_end: np.ndarray  # bool, active at end of day
    present_during: np.ndarray  # bool, active at some point of the day (clickstream)
    progress: np.ndarray  # float64 in [0, 1], how far into an at-risk phase
    cancel_cust: np.ndarray  # cancellation events inside the simulation
    cancel_day: np.ndarray
    cancel_saved: np.ndarray  # bool, re-activated within the grace period
    react_cust: np.ndarray
    react_day: np.ndarray


def _tenure_factor(tenure: np.ndarray) -> np.ndarray:
    return 0.5 + 2.6 * np.exp(-np.maximum(tenure, 0) / 75.0)


def _simulate_history(
    rng: np.random.Generator, pop: _Population, days: int, grace: int
) -> _History:
    """Day-by-day churn simulation, vectorised over customers."""
    n = pop.n
    ca = np.full(n, NONE_DAY, np.int64)
    ra = np.full(n, NONE_DAY, np.int64)
    cs = np.zeros(n, bool)
    nc = np.zeros(n, bool)
    # History before day 0 for customers who signed up early enough.
    s = pop.signup
    room = -1 - s  # days strictly between signup and day 0 usable for events
    u = rng.random(n)
    hist = np.where(room >= 3, np.select([u < 0.70, u < 0.85, u < 0.95], [0, 1, 2], 3), 0)
    a = s + 1 + np.floor(rng.random(n) * np.maximum(room - 2, 1)).astype(np.int64)
    b = a + 1 + np.floor(rng.random(n) * np.maximum(-a - 2, 1)).astype(np.int64)
    c = b + 1 + np.floor(rng.random(n) * np.maximum(-1 - b, 1)).astype(np.int64)
    one = hist == 1
    two = hist == 2
    three = hist == 3
    ca[one] = a[one]
    ca[two] = a[two]
    ra[two] = b[two]
    ca[three] = c[three]
    ra[three] = b[three]
    cs[hist > 0] = True
    nc[two | three] = True

    def cancelled_now() -> np.ndarray:
        return (ca != NONE_DAY) & ((ra == NONE_DAY) | (ra < ca))

    onset = np.full(n, NONE_DAY, np.int64)
    rlen = np.ones(n, np.int64)
    recover = np.zeros(n, bool)
    # Steady state at day 0: some active customers are already at risk.
    start_active = (s < 0) & ~cancelled_now()
    pre_risk = start_active & (rng.random(n) < 0.08)
    rlen[pre_risk] = rng.integers(7, 43, int(pre_risk.sum()))
    onset[pre_risk] = -np.floor(rng.random(int(pre_risk.sum())) * rlen[pre_risk]).astype(np.int64)
    recover[pre_risk] = rng.random(int(pre_risk.sum())) < 0.15
    sched_react = np.full(n, NONE_DAY, np.int64)
    sched_recancel = np.full(n, NONE_DAY, np.int64)
    last_cancel_event = np.full(n, -1, np.int64)

    shape = (days, n)
    out_ca = np.empty(shape, np.int64)
    out_ra = np.empty(shape, np.int64)
    out_cs = np.empty(shape, bool)
    out_nc = np.empty(shape, bool)
    out_sc = np.empty(shape, np.int64)
    out_active = np.empty(shape, bool)
    out_present = np.empty(shape, bool)
    out_prog = np.empty(shape, np.float64)
    cancel_cust: list[np.ndarray] = []
    cancel_day: list[np.ndarray] = []
    react_cust: list[np.ndarray] = []
    react_day: list[np.ndarray] = []
    saved = np.zeros(max(16, n), bool)  # per cancellation event: re-activated within grace
    n_cancel_events = 0
    p_onset = 0.0062
    p_noise = 0.0004
    plan_f = _PLAN_HAZARD[pop.plan]
    eng_f = np.clip(pop.engagement, 0.2, 5.0) ** -0.3

    for d in range(days):
        exists = s <= d
        active = exists & ~cancelled_now()
        # Re-activations (scheduled, or a rare win-back of an old cancellation).
        cancelled = exists & ~active
        winback = cancelled & (sched_react == NONE_DAY) & (rng.random(n) < 0.0008)
        react = cancelled & ((sched_react == d) | winback)
        ra[react] = d
        nc[react] = True
        sched_react[react] = NONE_DAY
        onset[react] = NONE_DAY
        flaky = react & (rng.random(n) < 0.15)
        sched_recancel[flaky] = d + rng.integers(1, 22, int(flaky.sum()))
        if react.any():
            idx = np.flatnonzero(react)
            react_cust.append(idx)
            react_day.append(np.full(idx.size, d))
            ev = last_cancel_event[idx]
            known = ev >= 0
            saved[ev[known]] |= (d - ca[idx][known]) <= grace
        # Progress of at-risk phases (drives today's behaviour).
        at_risk = active & (onset != NONE_DAY)
        prog = np.where(at_risk, np.clip((d - onset) / rlen, 0.0, 1.0), 0.0)
        # Cancellations: end of an at-risk phase, a scheduled re-cancel, or noise.
        eligible = active & (s < d)
        due = at_risk & (onset + rlen <= d)
        noise = rng.random(n) < p_noise * _tenure_factor(d - s)
        cancel = eligible & ((due & ~recover) | (sched_recancel == d) | noise)
        recovered = due & recover & ~cancel
        onset[recovered | cancel] = NONE_DAY
        second = cancel & nc
        ca[cancel] = d
        cs[cancel] = True
        sched_recancel[cancel] = NONE_DAY
        k = int(cancel.sum())
        if k:
            idx = np.flatnonzero(cancel)
            cancel_cust.append(idx)
            cancel_day.append(np.full(k, d))
            last_cancel_event[idx] = n_cancel_events + np.arange(k)
            n_cancel_events += k
            if n_cancel_events > saved.size:
                saved = np.concatenate([saved, np.zeros(max(n_cancel_events, saved.size), bool)])
            p_back = np.where(second[idx], 0.25, 0.5)
            back = rng.random(k) < p_back
            in_grace = rng.random(k) < 0.55
            delay = np.where(in_grace, rng.integers(1, 31, k), rng.integers(31, 101, k))
            sched_react[idx[back]] = d + delay[back]
        # New at-risk phases.
        healthy = active & ~cancel & (onset == NONE_DAY)
        p = p_onset * _tenure_factor(d - s) * plan_f * eng_f
        start_risk = healthy & (rng.random(n) < p)
        m = int(start_risk.sum())
        onset[start_risk] = d
        rlen[start_risk] = rng.integers(7, 43, m)
        recover[start_risk] = rng.random(m) < 0.15
        present = active | react
        calls_rate = np.where(present, 0.015 + 0.22 * prog, np.where(exists, 0.003, 0.0))
        out_sc[d] = rng.poisson(calls_rate)
        out_ca[d] = ca
        out_ra[d] = ra
        out_cs[d] = cs
        out_nc[d] = nc
        out_active[d] = exists & ~cancelled_now()
        out_present[d] = present
        out_prog[d] = prog

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    return _History(
        out_ca,
        out_ra,
        out_cs,
        out_nc,
        out_sc,
        out_active,
        out_present,
        out_prog,
        cat(cancel_cust),
        cat(cancel_day),
        saved[:n_cancel_events],
        cat(react_cust),
        cat(react_day),
    )


def _label_counts(hist: _History, days: int, horizon: int, grace: int) -> tuple[int, int, int]:
    """(customer-days with a final label, true positives, naive positives) from the truth."""
    n_final = days - horizon - grace
    if n_final <= 0:
        return 0, 0, 0
    n = hist.active_end.shape[1]
    churned = np.zeros((days + 1, n), np.int64)
    keep = ~hist.cancel_saved
    np.add.at(churned, (hist.cancel_day[keep] + 1, hist.cancel_cust[keep]), 1)
    cum = np.cumsum(churned, axis=0)  # cum[i] = churned cancels on days < i
    d = np.arange(n_final)
    true = (cum[d + horizon + 1] - cum[d + 1]) > 0  # cancels in (D, D+H]
    active = hist.active_end[:n_final]
    naive = hist.cancelled_service[d + horizon]
    return int(active.sum()), int((true & active).sum()), int((naive & active).sum())


# --------------------------------------------------------------------------------------
# Billing CSV
# --------------------------------------------------------------------------------------

_BOOL_SPELLINGS = (("0", "1"), ("false", "true"), ("FALSE", "TRUE"), ("False", "True"))


def _iso_table(first: int, last: int, start: date) -> np.ndarray:
    return np.array(
        [(start + timedelta(days=int(i))).isoformat() for i in range(first, last + 1)], dtype=object
    )


@dataclass
class _BillingStyle:
    order: np.ndarray
    header_case: int
    extra: str | None
    bool_style: int  # 0..3 fixed spelling, 4 mixed per row
    n_parts: int


def _billing_style(rng: np.random.Generator) -> _BillingStyle:
    shuffled = rng.random() < 0.2
    order = rng.permutation(len(BILLING_COLUMNS)) if shuffled else np.arange(len(BILLING_COLUMNS))
    header_case = int(rng.choice(3, p=[0.8, 0.1, 0.1]))
    extra = None
    if rng.random() < 0.15:
        extra = ("region", "account_owner", "_ingest_batch_id")[int(rng.integers(0, 3))]
    return _BillingStyle(
        order, header_case, extra, int(rng.integers(0, 5)), int(rng.integers(1, 4))
    )


def _billing_table(
    rng: np.random.Generator,
    fault_rng: np.random.Generator,
    pop: _Population,
    hist: _History,
    day: int,
    style: _BillingStyle,
    dates: tuple[np.ndarray, int],
    faults: set[str],
) -> tuple[list[str], list[np.ndarray], int]:
    """Header, columns (object arrays of str, output order) and where mrr is, of one extract."""
    table, first = dates
    k = int(np.searchsorted(pop.signup, day, side="right"))
    ids = pop.ids[:k]
    mess = rng.random(k)
    ids = np.where(mess < 0.01, " " + ids, ids)
    ids = np.where((mess >= 0.01) & (mess < 0.02), ids + "  ", ids)
    ids = np.where((mess >= 0.02) & (mess < 0.035), np.char.lower(ids.astype(str)), ids)

    def iso(idx: np.ndarray) -> np.ndarray:
        out = table[np.clip(idx - first, 0, len(table) - 1)]
        return np.where(idx == NONE_DAY, "", out)

    plan_case = rng.choice(3, size=k, p=[0.9, 0.07, 0.03])
    plans = np.array([[p, p.capitalize(), p.upper()] for p in _PLANS], dtype=object)
    active = hist.active_end[day, :k]
    mrr = np.where(active, pop.mrr_text[:k], "0.00").astype(object)
    if style.bool_style < 4:
        spell = np.broadcast_to(np.array(_BOOL_SPELLINGS[style.bool_style], dtype=object), (k, 2))
    else:
        spell = np.array(_BOOL_SPELLINGS, dtype=object)[rng.integers(0, 4, k)]
    rows = np.arange(k)
    columns: dict[str, np.ndarray] = {
        "customer_id": ids,
        "account_name": pop.names[:k],
        "signup_date": iso(pop.signup[:k]),
        "plan": plans[pop.plan[:k], plan_case],
        "seats": pop.seats[:k].astype(str).astype(object),
        "mrr": mrr,
        "cancelled_service": spell[rows, hist.cancelled_service[day, :k].astype(int)],
        "cancelled_at": iso(hist.cancelled_at[day, :k]),
        "new_customer": spell[rows, hist.new_customer[day, :k].astype(int)],
        "reactivated_at": iso(hist.reactivated_at[day, :k]),
        "support_calls": hist.support_calls[day, :k].astype(str).astype(object),
        "snapshot_date": np.full(k, table[day - first], dtype=object),
    }
    order = [BILLING_COLUMNS[i] for i in style.order]
    if style.extra == "region":
        columns["region"] = np.array(["EU", "NA", "APAC"], dtype=object)[rng.integers(0, 3, k)]
    elif style.extra == "account_owner":
        owners = np.array(["Doe, Jane", "Smith, J.", "Åsa Berg", 'Li "Lee" Wei'], dtype=object)
        columns["account_owner"] = owners[rng.integers(0, 4, k)]
    elif style.extra == "_ingest_batch_id":
        columns["_ingest_batch_id"] = np.full(k, f"b{day + 100000}", dtype=object)
    if style.extra:
        order.insert(int(rng.integers(0, len(order) + 1)), style.extra)
    if "schema_new_column" in faults:
        tiers = np.array(["gold", "silver", ""], dtype=object)
        columns["loyalty_tier"] = tiers[fault_rng.integers(0, 3, k)]
        order.append("loyalty_tier")
    if "schema_missing_column" in faults:
        order.remove("seats")
    header = list(order)
    if "schema_renamed_column" in faults:
        header[header.index("mrr")] = "monthly_revenue"
    if style.header_case == 1:
        header = [h.upper() for h in header]
    elif style.header_case == 2:
        header = [h.title() for h in header]
    return header, [columns[c] for c in order], order.index("mrr")


def _corrupt(
    rng: np.random.Generator, data: list[np.ndarray], mrr_pos: int, pop: _Population
) -> list[np.ndarray]:
    """A faulty first delivery: five rows with a negative mrr, three customer ids twice."""
    k = len(data[0])
    if k == 0:
        return data
    pick = rng.choice(k, size=min(8, k), replace=False)
    bad, dup = pick[:5], np.sort(pick[5:])  # disjoint
    data = list(data)
    data[mrr_pos] = data[mrr_pos].copy()
    data[mrr_pos][bad] = _money(-(pop.mrr_cents[bad] + 100))
    take = np.sort(np.concatenate([np.arange(k), dup]))
    return [col[take] for col in data]


def _csv_parts(header: list[str], data: list[np.ndarray], n_parts: int) -> list[bytes]:
    """Split rows into ``n_parts`` gzip CSV parts (RFC 4180 quoting, CRLF, header in each)."""
    n_rows = len(data[0]) if data else 0
    bounds = np.linspace(0, n_rows, n_parts + 1).astype(int)
    parts = []
    for i in range(n_parts):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(header)
        lo, hi = bounds[i], bounds[i + 1]
        writer.writerows(zip(*(col[lo:hi] for col in data), strict=True))
        parts.append(gzip.compress(buf.getvalue().encode("utf-8"), _GZIP_LEVEL, mtime=0))
    return parts


# --------------------------------------------------------------------------------------
# Clickstream: events
# --------------------------------------------------------------------------------------

_EVENT_WEB = (b"page_view", b"hover", b"click", b"support_chat")
_EVENT_APP = (b"ui.page_view", b"ui.hover", b"ui.click", b"support.contact")
_PAGES = (
    b"/dashboard", b"/reports", b"/home", b"/settings", b"/pricing",
    b"/billing", b"/help", b"/integrations", b"/team", b"/docs",
)  # fmt: skip
_PAGE_P = np.array([0.30, 0.18, 0.12, 0.08, 0.07, 0.05, 0.06, 0.06, 0.05, 0.03])
_ANON_PAGE_P = np.array([0.0, 0.0, 0.4, 0.0, 0.3, 0.0, 0.15, 0.0, 0.0, 0.15])
_PAGE_PRICING, _PAGE_BILLING, _PAGE_HELP = 4, 5, 6
# Element ids; 0 = key missing, 1 = null.
_ELEMENTS: tuple[str | None, ...] = (
    None, None, "subscribe_button", "subscribe-btn", "subscribe-btn-footer",
    " Subscribe_Button", "SUBSCRIBE-BTN", "Subscribe-Btn ", "nav-reports", "export_csv",
    "save-button", "invite-user", "unsubscribe_link", "subscription-faq", "plan-compare",
    "search-box", "chat-widget", "help_chat",
)  # fmt: skip
_EL_MISSING, _EL_NULL = 0, 1
_SUB_WEB, _SUB_WEB_P = np.array([2, 4, 5, 6]), np.array([0.7, 0.22, 0.04, 0.04])
_SUB_APP, _SUB_APP_P = np.array([3, 4, 7]), np.array([0.7, 0.26, 0.04])
_OTHER_EL = np.arange(8, 16)
_SUPPORT_EL = np.array([16, 17])
IS_SUBSCRIBE = np.array(
    [e is not None and e.strip().lower().startswith("subscribe") for e in _ELEMENTS]
)
_WS = (b"", b" ", b"  ", b"\\t", b"\\u00a0")  # JSON-escaped stray whitespace
_LETTER = (b"", b"C", b"c")
_VERSIONS = (b"2.4.0", b"2.4.1", b"2.5.0", b"3.0.0-beta")
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _hex(raw: np.ndarray) -> np.ndarray:
    """(n, k) uint8 -> (n, 2k) ASCII hex digits."""
    out = np.empty((raw.shape[0], raw.shape[1] * 2), np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


_DIGITS4 = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], np.uint8)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative ints -> (n, width) zero-padded ASCII digits, four digits per lookup."""
    out = np.empty((values.shape[0], width), np.uint8)
    v = np.asarray(values, np.int64)
    j = width
    while j > 0:
        k = min(4, j)
        v, r = np.divmod(v, 10**k)
        out[:, j - k : j] = _DIGITS4[r, 4 - k :]
        j -= k
    return out


def _datetime_parts(ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms -> ('YYYY-MM-DD', 'HH:MM:SS') as (n, 10) and (n, 8) ASCII matrices."""
    day = np.floor_divide(ms, MS_PER_DAY)
    rest = ms - day * MS_PER_DAY
    d64 = day.astype("datetime64[D]")
    year = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    month_start = d64.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    dom = (d64 - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    n = ms.shape[0]
    dpart = np.empty((n, 10), np.uint8)
    dpart[:, 0:4] = _digits(year, 4)
    dpart[:, 4] = dpart[:, 7] = ord("-")
    dpart[:, 5:7] = _digits(month, 2)
    dpart[:, 8:10] = _digits(dom, 2)
    secs = rest // 1000
    tpart = np.empty((n, 8), np.uint8)
    tpart[:, 0:2] = _digits(secs // 3600, 2)
    tpart[:, 2] = tpart[:, 5] = ord(":")
    tpart[:, 3:5] = _digits(secs // 60 % 60, 2)
    tpart[:, 6:8] = _digits(secs % 60, 2)
    return dpart, tpart


def _offset_table() -> tuple[list[bytes], np.ndarray]:
    """Offsets: code 0 'Z', 1 'z', then per time zone '+HH:MM' and '+HHMM'."""
    table = [b"Z", b"z"]
    for minutes in _TZ_MINUTES:
        sign = "+" if minutes >= 0 else "-"
        hh, mm = divmod(abs(int(minutes)), 60)
        table += [f"{sign}{hh:02d}:{mm:02d}".encode(), f"{sign}{hh:02d}{mm:02d}".encode()]
    return table, _TZ_MINUTES


_OFFSETS, _ = _offset_table()

_EV_COLS = (
    "t", "cust", "etype", "page", "elem", "src", "cid", "pre", "letter", "suf", "sep",
    "frac", "sub", "off", "tz", "msx", "xf", "xb", "pextra", "ver", "anon",
)  # fmt: skip


def _choose(rng: np.random.Generator, options: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    return options[rng.choice(len(options), size=n, p=p)]


def _make_events(
    rng: np.random.Generator,
    pop: _Population,
    start_ms: int,
    counts: np.ndarray,
    progress: np.ndarray,
    anon_counts: np.ndarray,
) -> dict[str, np.ndarray]:
    """Event records (one row per distinct event) for the given per-customer-day counts."""
    n = pop.n
    flat = counts.ravel()
    nz = np.flatnonzero(flat)
    c = flat[nz]
    n_att = int(c.sum())
    # Sessions: each customer-day's events fall into one or more sessions.
    n_sess = np.minimum(1 + rng.binomial(np.maximum(c - 1, 0), 0.12), 60)
    sess_base = np.concatenate([[0], np.cumsum(n_sess)[:-1]]).astype(np.int64)
    cd_pos = np.repeat(np.arange(nz.size), c)
    sess = sess_base[cd_pos] + (rng.random(n_att) * n_sess[cd_pos]).astype(np.int64)
    n_s = int(n_sess.sum())
    sess_cd = np.repeat(nz, n_sess)
    sess_cust = sess_cd % n if n else sess_cd
    local_h = np.where(
        rng.random(n_s) < 0.85, np.clip(rng.normal(14.0, 3.0, n_s), 6, 23), rng.uniform(0, 24, n_s)
    )
    start_s = np.mod(local_h * 3600 - _TZ_MINUTES[pop.tz[sess_cust]] * 60, 86400)
    sess_start = (start_s * 1000).astype(np.int64)
    order = np.argsort(sess, kind="stable")
    s_sorted = sess[order]
    gaps = np.minimum(rng.exponential(45_000, n_att), 1_500_000).astype(np.int64) + 500
    first = np.ones(n_att, bool)
    first[1:] = s_sorted[1:] != s_sorted[:-1]
    gaps[first] = 0
    csum = np.cumsum(gaps)
    first_idx = np.maximum.accumulate(np.where(first, np.arange(n_att), 0))
    offset = np.empty(n_att, np.int64)
    offset[order] = csum - csum[first_idx]
    cd = nz[cd_pos]
    day = cd // n if n else cd
    cust = cd % n if n else cd
    t_att = start_ms + day * MS_PER_DAY + sess_start[sess] + offset
    prog = progress.ravel()[cd]
    # Anonymous visitors.
    n_anon = int(anon_counts.sum())
    aday = np.repeat(np.arange(anon_counts.size), anon_counts)
    ah = np.clip(rng.normal(14.0, 4.5, n_anon), 0, 23.999)
    t_anon = start_ms + aday * MS_PER_DAY + (ah * MS_PER_HOUR).astype(np.int64)
    total = n_att + n_anon
    ev: dict[str, np.ndarray] = {}
    ev["t"] = np.concatenate([t_att, t_anon])
    ev["cust"] = np.concatenate([cust, np.full(n_anon, -1)]).astype(np.int64)
    anon = ev["cust"] < 0
    p = np.concatenate([prog, np.zeros(n_anon)])
    # Event types: at-risk customers hover more, click less, contact support more.
    u = rng.random(total)
    p_pv = 0.64 - 0.04 * p
    p_hv = p_pv + 0.20 + 0.10 * p
    p_sp = np.where(anon, 0.0, 0.01 + 0.05 * p)
    etype = np.where(u < p_pv, 0, np.where(u < p_hv, 1, np.where(u < 1 - p_sp, 2, 3)))
    ev["etype"] = etype
    src = np.where(anon, rng.random(total) < 0.2, rng.random(total) < pop.app_share[ev["cust"]])
    ev["src"] = src.astype(np.int64)
    # Elements and pages.
    sub_w = _choose(rng, _SUB_WEB, _SUB_WEB_P, total)
    sub_a = _choose(rng, _SUB_APP, _SUB_APP_P, total)
    sub_el = np.where(src, sub_a, sub_w)
    other = _OTHER_EL[rng.integers(0, len(_OTHER_EL), total)]
    none_el = np.where(rng.random(total) < 0.55, _EL_MISSING, _EL_NULL)
    v = rng.random(total)
    p_sub_hover = np.where(anon, 0.10, 0.06 + 0.30 * p)
    p_sub_click = np.where(anon, 0.02, 0.05 * (1 - 0.9 * p))
    hover_el = np.where(v < p_sub_hover, sub_el, np.where(v < 0.88, other, none_el))
    click_el = np.where(v < p_sub_click, sub_el, np.where(v < 0.9, other, none_el))
    support_el = np.where(v < 0.7, _SUPPORT_EL[rng.integers(0, 2, total)], _EL_MISSING)
    elem = np.select(
        [etype == 0, etype == 1, etype == 2], [none_el, hover_el, click_el], support_el
    )
    ev["elem"] = elem
    page = np.where(
        anon,
        rng.choice(len(_PAGES), size=total, p=_ANON_PAGE_P),
        rng.choice(len(_PAGES), size=total, p=_PAGE_P),
    )
    sub_page = np.where(rng.random(total) < 0.7, _PAGE_PRICING, _PAGE_BILLING)
    page = np.where(IS_SUBSCRIBE[elem], sub_page, page)
    page = np.where(etype == 3, _PAGE_HELP, page)
    ev["page"] = page
    # How ids are presented. Attributed: style 0; anonymous web 1 null / 2 absent /
    # 3 whitespace-only; anonymous app 1 id null / 2 id absent / 3 user null / 4 user absent /
    # 5 whitespace-only.
    w = rng.random(total)
    anon_web = np.select([w < 0.5, w < 0.97], [1, 2], 3)
    anon_app = np.select([w < 0.3, w < 0.55, w < 0.75, w < 0.97], [1, 2, 3, 4], 5)
    ev["cid"] = np.where(anon, np.where(src, anon_app, anon_web), 0)
    ws_only = anon & (ev["cid"] == np.where(src, 5, 3))
    x = rng.random(total)
    pre = np.select([x < 0.03, x < 0.035, x < 0.045], [1, 3, 4], 0)
    suf = np.select([x > 0.96, x > 0.955], [1, 2], 0)
    ev["pre"] = np.where(ws_only, np.where(x < 0.5, 2, 0), np.where(anon, 0, pre))
    ev["suf"] = np.where(anon, 0, suf)
    ev["letter"] = np.where(anon, 0, np.where((x > 0.5) & (x < 0.56), 2, 1))
    # Web timestamps: fraction style (0 none, 1 '.mmm', 2 '.mmmuuu', 3 nine digits),
    # separator, offset (Z, z, or the visitor's local offset as +HH:MM / +HHMM).
    y = rng.random(total)
    frac = np.select([y < 0.03, y < 0.91, y < 0.99], [0, 1, 2], 3)
    web = ~src
    ev["t"] = np.where(web & (frac == 0), ev["t"] - np.mod(ev["t"], 1000), ev["t"])
    ev["frac"] = frac
    ev["sub"] = rng.integers(0, 1_000_000, total)
    ev["sep"] = (rng.random(total) < 0.03).astype(np.int64)
    tz = np.where(anon, rng.choice(len(_TZ_MINUTES), size=total, p=_TZ_PROBS), 0)
    tz = np.where(anon, tz, pop.tz[np.maximum(ev["cust"], 0)])
    o = rng.random(total)
    off_style = np.select([o < 0.6, o < 0.61, o < 0.95], [0, 1, 2], 3)
    ev["off"] = np.where(off_style < 2, off_style, 2 + 2 * tz + (off_style == 3))
    ev["tz"] = np.where(off_style < 2, -1, tz)
    ev["msx"] = (rng.random(total) < 0.005).astype(np.int64)
    z = rng.random(total)
    ev["xf"] = np.select([z < 0.02, z < 0.03], [1, 2], 0)
    ev["xb"] = np.select([z > 0.97, z > 0.95, z > 0.93], [1, 2, 3], 0)
    ev["pextra"] = np.select([z > 0.985, z > 0.96], [1, 2], 0)
    ev["ver"] = rng.choice(len(_VERSIONS), size=total, p=[0.2, 0.5, 0.28, 0.02])
    ev["anon"] = np.where(anon, n + rng.integers(0, max(n_anon // 3, 1), total), ev["cust"])
    ev["eid"] = rng.integers(0, 256, (total, 12), dtype=np.uint8)
    return ev


def _take(ev: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in ev.items()}


# --------------------------------------------------------------------------------------
# Clickstream: vectorised NDJSON rendering
# --------------------------------------------------------------------------------------


class _Lines:
    """Assembles one byte string per row from segments, without a Python loop per row.

    A segment is a literal, a categorical (a small table of byte strings picked by a code
    per row; empty entries make fields optional) or a fixed-width matrix (optionally only
    for some rows). Every segment is a (n, width) byte matrix plus a length per row; rows
    are written into a flat buffer at given start offsets, in cache-sized blocks.
    """

    _BLOCK = 8192

    def __init__(self, n: int) -> None:
        self.n = n
        # (table (k, w) uint8, codes per row into table or None = row i uses row i, lens)
        self.segs: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []
        self._lit = b""

    def _flush(self) -> None:
        if self._lit:
            table = np.frombuffer(self._lit, np.uint8)[None, :]
            self.segs.append((table, np.zeros(self.n, np.int64), np.full(self.n, len(self._lit))))
            self._lit = b""

    def lit(self, text: bytes) -> None:
        self._lit += text

    def cat(self, table: Sequence[bytes], codes: np.ndarray) -> None:
        self._flush()
        width = max((len(t) for t in table), default=0)
        mat = np.zeros((len(table), max(width, 1)), np.uint8)
        for i, t in enumerate(table):
            mat[i, : len(t)] = np.frombuffer(t, np.uint8)
        codes = np.asarray(codes, np.int64)
        lens = np.array([len(t) for t in table], np.int64)[codes]
        self.segs.append((mat, codes, lens))

    def fix(self, mat: np.ndarray, mask: np.ndarray | None = None) -> None:
        self._flush()
        w = mat.shape[1]
        lens = np.full(self.n, w, np.int64) if mask is None else np.where(mask, w, 0)
        self.segs.append((mat, None, lens))

    def lengths(self) -> np.ndarray:
        self._flush()
        total = np.zeros(self.n, np.int64)
        for _, _, lens in self.segs:
            total += lens
        return total

    def write(self, buf: np.ndarray, starts: np.ndarray) -> None:
        self._flush()
        starts = np.asarray(starts, np.int64)
        for lo in range(0, self.n, self._BLOCK):
            hi = min(lo + self._BLOCK, self.n)
            cur = starts[lo:hi].copy()
            for table, codes, lens_all in self.segs:
                lens = lens_all[lo:hi]
                if codes is not None and table.shape[0] == 1:  # a literal
                    width = int(lens[0])
                    buf[cur[:, None] + np.arange(width)] = table[0, :width]
                    cur += width
                    continue
                vals = table[codes[lo:hi]] if codes is not None else table[lo:hi]
                widths = np.flatnonzero(np.bincount(lens))
                for width in widths[widths > 0]:
                    if widths.size == 1:
                        rows: slice | np.ndarray = slice(None)
                    else:
                        rows = np.flatnonzero(lens == width)
                    buf[cur[rows][:, None] + np.arange(width)] = vals[rows, :width]
                cur += lens


def _json_str(text: str) -> bytes:
    """Body of a JSON string literal (ASCII, escaped)."""
    return json.dumps(text)[1:-1].encode("ascii")


def _elem_tables() -> tuple[list[bytes], list[bytes]]:
    web, app = [], []
    for i, name in enumerate(_ELEMENTS):
        if i == _EL_MISSING:
            web.append(b"")
            app.append(b'"}}')
        elif i == _EL_NULL:
            web.append(b', \\"element\\": null')
            app.append(b'"}, "element": null}')
        else:
            body = _json_str(name or "")
            # Inside props the element string is itself JSON-escaped once more.
            web.append(b', \\"element\\": \\"' + body.replace(b"\\", b"\\\\") + b'\\"')
            app.append(b'"}, "element": {"id": "' + body + b'"}}')
    return web, app


_ELEM_WEB, _ELEM_APP = _elem_tables()
_WEB_FRONT = (b"", b'"schema_version": 2, ', b'"_meta": {"sdk": "js", "v": [1, 2]}, ')
_APP_FRONT = (b"", b'"schema_version": 3, ', b'"_meta": {"os": "android", "v": [4, 1]}, ')
_BACK = (b"", b', "sdk": "js-3.1.4"', b', "received_at": null', b', "geo": {"country": "DE"}')
_PROPS_EXTRA = (b"", b', \\"ref\\": \\"newsletter\\"', b', \\"ab\\": \\"B\\"')
_CID_OPEN = (b', "customerId": "', b', "customerId": null', b"", b', "customerId": "')
_USER_OPEN = (
    b', "user": {"customer_id": "',
    b', "user": {"customer_id": null, "anon_id": "a-',
    b', "user": {"anon_id": "a-',
    b', "user": null',
    b"",
    b', "user": {"customer_id": "',
)


def _render(ev: dict[str, np.ndarray], pop_ids: np.ndarray, anon_hex: np.ndarray) -> _Lines:
    """Segments of the records of ``ev`` (all of one shape, chosen by ev['src'][0])."""
    n = ev["t"].shape[0]
    lines = _Lines(n)
    app = bool(ev["src"][0]) if n else False
    cust = ev["cust"]
    attributed = cust >= 0
    digits = _digits(pop_ids[np.maximum(cust, 0)], 7)
    hexid = _hex(ev["eid"])
    lines.lit(b"{")
    lines.cat(_APP_FRONT if app else _WEB_FRONT, ev["xf"])
    if not app:
        lines.lit(b'"event_id": "w-')
        lines.fix(hexid)
        lines.lit(b'", "event": "')
        lines.cat(_EVENT_WEB, ev["etype"])
        lines.lit(b'", "ts": "')
        local = ev["t"] + np.where(ev["tz"] >= 0, _TZ_MINUTES[np.maximum(ev["tz"], 0)], 0) * 60_000
        dpart, tpart = _datetime_parts(local)
        lines.fix(dpart)
        lines.cat((b"T", b" "), ev["sep"])
        lines.fix(tpart)
        ms = np.empty((n, 4), np.uint8)
        ms[:, 0] = ord(".")
        ms[:, 1:] = _digits(np.mod(ev["t"], 1000), 3)
        sub = _digits(ev["sub"], 6)
        lines.fix(ms, ev["frac"] >= 1)
        lines.fix(sub[:, :3], ev["frac"] >= 2)
        lines.fix(sub[:, 3:], ev["frac"] >= 3)
        lines.cat(_OFFSETS, ev["off"])
        lines.lit(b'"')
        lines.cat(_CID_OPEN, ev["cid"])
        quoted = (ev["cid"] == 0) | (ev["cid"] == 3)
    else:
        lines.lit(b'"event_id": "m-')
        lines.fix(hexid)
        lines.lit(b'", "event_type": "')
        lines.cat(_EVENT_APP, ev["etype"])
        lines.lit(b'", "timestamp_ms": ')
        lines.fix(_digits(ev["t"], 13))
        lines.cat((b"", b".0"), ev["msx"])
        lines.cat(_USER_OPEN, ev["cid"])
        quoted = (ev["cid"] == 0) | (ev["cid"] == 5)
    lines.cat(_WS, ev["pre"])
    lines.cat(_LETTER, ev["letter"])
    lines.fix(digits, attributed)
    lines.cat(_WS, ev["suf"])
    if not app:
        lines.cat((b"", b'"'), quoted.astype(np.int64))
        lines.lit(b', "anonymousId": "a-')
        lines.fix(anon_hex[ev["anon"]])
        lines.lit(b'", "props": "{\\"page\\": \\"')
        lines.cat(_PAGES, ev["page"])
        lines.lit(b'\\"')
        lines.cat(_ELEM_WEB, ev["elem"])
        lines.cat(_PROPS_EXTRA, ev["pextra"])
        lines.lit(b'}"')
    else:
        lines.cat((b"", b'", "anon_id": "a-'), quoted.astype(np.int64))
        has_anon = ev["cid"] <= 2
        has_anon |= ev["cid"] == 5
        lines.fix(anon_hex[ev["anon"]], has_anon)
        lines.cat((b"", b'"}'), has_anon.astype(np.int64))
        lines.lit(b', "context": {"page": {"path": "')
        lines.cat(_PAGES, ev["page"])
        lines.cat(_ELEM_APP, ev["elem"])
        lines.lit(b', "app_version": "')
        lines.cat(_VERSIONS, ev["ver"])
        lines.lit(b'"')
    lines.cat(_BACK, ev["xb"])
    lines.lit(b"}")
    return lines


def _iso_ms(ms: int, offset_min: int = 0, *, zulu: bool = True) -> str:
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc) + timedelta(minutes=offset_min)
    base = t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}"
    if zulu:
        return base + "Z"
    sign = "+" if offset_min >= 0 else "-"
    hh, mm = divmod(abs(offset_min), 60)
    return base + f"{sign}{hh:02d}:{mm:02d}"


def _bad_line(rng: np.random.Generator, reason: str, arrival_ms: int, cid: str) -> bytes:
    """One planted bad record whose reason is unambiguous under LANDING.md section 4."""
    eid = rng.bytes(12).hex()
    t = arrival_ms - int(rng.integers(1_000, 600_000))
    ts = _iso_ms(t)
    v = int(rng.integers(0, 6))
    web = {"event_id": f"w-{eid}", "event": "click", "ts": ts, "customerId": cid}
    app = {"event_id": f"m-{eid}", "event_type": "ui.click", "timestamp_ms": t}
    app["user"] = {"customer_id": cid}
    options: list[object]
    if reason == "invalid_json":
        text = json.dumps(web)
        options = [
            text[: len(text) // 2],  # truncated record
            text.replace(", ", ",, ", 1),
            text.replace('"', "'"),
            "<html><body>503 Service Unavailable</body></html>",
            text[:-1],
            json.dumps(app).replace('"ui.click"', "ui.click"),
        ]
        return str(options[v]).encode("ascii")
    if reason == "unknown_shape":
        both = {**web, "event_type": "ui.click", "timestamp_ms": t}
        no_ts = {k: x for k, x in web.items() if k != "ts"}
        no_id = {k: x for k, x in app.items() if k != "event_id"}
        options = [{"id": f"x-{eid}", "type": "click", "time": t}, [f"w-{eid}", t], "page_view"]
        options += [both, no_ts, no_id]
    elif reason == "bad_timestamp":
        options = [
            {**web, "ts": ts[:-1]},  # no offset
            {**web, "ts": "yesterday"},
            {**web, "ts": None},
            {**app, "timestamp_ms": str(t)},
            {**app, "timestamp_ms": None},
            {**app, "timestamp_ms": t + 0.5},
        ]
    elif reason == "unknown_event_type":
        options = [
            {**web, "event": "scroll", "props": "{}"},
            {**web, "event": "rage_click", "ts": _iso_ms(t, 120, zulu=False)},
            {**app, "event_type": "ui.swipe"},
            {**app, "event_type": "app.crash", "user": None},
            {**web, "event": "PageView", "customerId": None},
            {**app, "event_type": None},
        ]
    else:  # future: a device clock one to three days ahead
        ahead = arrival_ms + int(rng.integers(int(1.2 * MS_PER_DAY), 3 * MS_PER_DAY))
        options = [{**app, "event_type": "ui.page_view", "timestamp_ms": ahead}]
    return json.dumps(options[v % len(options)]).encode("ascii")


# --------------------------------------------------------------------------------------
# Clickstream: objects
# --------------------------------------------------------------------------------------


@dataclass
class _Stream:
    """Lines grouped into objects, ready to render; plus the counts for the summary."""

    ev: dict[str, np.ndarray]
    obj_time: np.ndarray  # arrival ms per final object, sorted
    obj_key: list[str]
    line_obj: np.ndarray  # per event line, sorted by (obj, pos)
    line_ev: np.ndarray
    line_pos: np.ndarray
    bad_obj: np.ndarray  # per bad line, sorted by obj
    bad_pos: np.ndarray
    bad_bytes: list[bytes]
    stats: dict[str, Any]
    pop_ids: np.ndarray  # numeric customer ids, for rendering


def _object_key(ms: int, rng_bytes: bytes) -> str:
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    u = uuid.UUID(bytes=rng_bytes, version=4)
    return f"clickstream/{t:%Y/%m/%d/%H}/churn-clickstream-1-{t:%Y-%m-%d-%H-%M-%S}-{u}.gz"


FaultRng = Callable[[str, int], np.random.Generator]


def _build_stream(
    rng: np.random.Generator,
    pop: _Population,
    start_ms: int,
    days: int,
    ev: dict[str, np.ndarray],
    *,
    fault_rng: FaultRng | None = None,
    outage_days: Sequence[int] = (),
    burst_days: Sequence[int] = (),
    late_fault_days: Sequence[int] = (),
    drop_days: Sequence[int] = (),
    bad_burst_days: Sequence[int] = (),
    mess: MessProfile = MessProfile(),
) -> _Stream:
    """Assign events to objects by arrival time and plant duplicates, lateness and bad lines.

    Every draw of ``rng`` happens whatever the faults are, and each fault draws from its own
    generator, so a fault changes only what it is documented to change.
    """
    n_ev = ev["t"].shape[0]
    t = ev["t"]
    e_day = np.floor_divide(t - start_ms, MS_PER_DAY)
    window_end = start_ms + (e_day + 1) * MS_PER_DAY + LATENESS_MS
    # Object timeline: one object every 5-15 minutes of arrival time.
    horizon = start_ms + (days + 1) * MS_PER_DAY + 4 * MS_PER_HOUR
    n_est = int((horizon - start_ms) // 300_000) + 4
    secs = int(rng.integers(0, 300)) + np.cumsum(rng.integers(300, 901, n_est))
    times = start_ms + secs * 1000
    times = times[times < horizon]
    key_bytes = rng.bytes(16 * times.size)
    # Normal delivery delay, capped at 90 minutes so an event of D lands before D+1 02:00.
    kind = rng.random(n_ev)
    delay = np.where(
        kind < 0.85,
        5_000 + rng.exponential(20_000, n_ev),
        np.where(kind < 0.99, rng.exponential(480_000, n_ev), rng.uniform(6e5, 5.4e6, n_ev)),
    )
    ready = t + np.minimum(delay, 5.4e6).astype(np.int64)
    # A handful arrive beyond their window (a device that was offline for a while).
    late = rng.random(n_ev) < mess.late
    late_target = window_end + rng.integers(600_000, 30 * MS_PER_HOUR, n_ev)
    if not late.any() and n_ev and mess.late > 0:  # even a tiny run gets its handful
        late[int(rng.integers(0, n_ev))] = True
    late &= late_target <= times[-1]
    ready = np.where(late, late_target, ready)
    obj = np.searchsorted(times, ready, side="left")
    ok = obj < times.size
    normal_obj = np.minimum(obj, times.size - 1)  # before any fault moves events
    pos = ready.copy()
    dup_draw = rng.random(n_ev) < mess.duplicates
    cross_draw = rng.random(n_ev) < 0.5
    # Fault late_events: one extra object at D+2 09:00-13:00 holding 300 events of D.
    extra_times: list[int] = []
    extra_keys: list[bytes] = []
    for d in late_fault_days:
        assert fault_rng is not None
        frng = fault_rng("late_events", d)
        cand = np.flatnonzero((e_day == d) & ok)
        if cand.size == 0:
            continue
        pick = frng.choice(cand, size=min(300, cand.size), replace=False)
        extra_times.append(
            start_ms + (d + 2) * MS_PER_DAY + int(frng.integers(9 * 3600, 13 * 3600)) * 1000
        )
        extra_keys.append(frng.bytes(16))
        obj[pick] = times.size + len(extra_times) - 1
        pos[pick] = frng.integers(0, 10**9, pick.size)
    all_times = np.concatenate([times, np.array(extra_times, np.int64)])
    all_keys = key_bytes + b"".join(extra_keys)
    in_window = ok & (all_times[np.minimum(obj, all_times.size - 1)] < window_end)
    # Duplicates of attributed events delivered inside their window.
    attributed = ev["cust"] >= 0
    dup = attributed & in_window & dup_draw
    nxt = np.minimum(obj + 1, times.size - 1)
    cross = dup & cross_draw & (obj + 1 < times.size) & (times[nxt] < window_end)
    same = dup & ~cross
    same_idx = np.flatnonzero(same)
    cross_idx = np.flatnonzero(cross)
    base = np.flatnonzero(ok)
    line_ev = np.concatenate([base, same_idx, cross_idx])
    line_obj = np.concatenate([obj[base], obj[same_idx], obj[cross_idx] + 1])
    same_jitter = rng.integers(1, 120_000, n_ev)
    cross_jitter = rng.integers(0, 600_000, n_ev)
    line_pos = np.concatenate(
        [
            pos[base],
            pos[same_idx] + same_jitter[same_idx],
            times[nxt[cross_idx]] - cross_jitter[cross_idx],
        ]
    )
    is_same = np.concatenate(
        [np.zeros(base.size, bool), np.ones(same_idx.size, bool), np.zeros(cross_idx.size, bool)]
    )
    is_cross = np.concatenate(
        [np.zeros(base.size + same_idx.size, bool), np.ones(cross_idx.size, bool)]
    )
    # Bad lines: the profile's share of the lines, per reason, spread over the objects like
    # the events (each reason with a non-zero share at least once).
    shares = np.array(list(mess.bad_line_shares.values()))
    per_reason = rng.binomial(line_ev.size, shares / (1.0 - shares.sum()))
    per_reason += (shares > 0) & (per_reason == 0) & (n_ev > 0)
    reasons = list(np.repeat(np.arange(len(BAD_LINE_REASONS)), per_reason))
    bad_obj = normal_obj[rng.integers(0, max(n_ev, 1), len(reasons))] if n_ev else obj[:0]
    who = rng.integers(0, pop.n, len(reasons))
    bad_bytes = [
        _bad_line(rng, BAD_LINE_REASONS[r], int(all_times[o]), str(pop.ids[w]))
        for r, o, w in zip(reasons, bad_obj, who, strict=True)
    ]
    bad_pos = rng.integers(0, 2**62, len(reasons))
    # Fault malformed_burst: 3,000 invalid_json lines in the objects of one hour.
    for d in burst_days:
        assert fault_rng is not None
        frng = fault_rng("malformed_burst", d)
        lo = start_ms + d * MS_PER_DAY + int(frng.integers(8, 20)) * MS_PER_HOUR
        cand = np.flatnonzero((times >= lo) & (times < lo + MS_PER_HOUR))
        if cand.size == 0:
            continue
        objs = cand[frng.integers(0, cand.size, 3000)]
        who = frng.integers(0, pop.n, 3000)
        bad_bytes += [
            _bad_line(frng, "invalid_json", int(times[o]), str(pop.ids[w]))
            for o, w in zip(objs, who, strict=True)
        ]
        bad_obj = np.concatenate([bad_obj, objs])
        bad_pos = np.concatenate([bad_pos, frng.integers(0, 2**62, 3000)])
        reasons += [0] * 3000
    # Fault bad_lines_burst: the profile's burst share of extra bad lines (its mix of
    # reasons) in the objects arriving during the day, on top of the everyday ones.
    mix = shares / shares.sum() if shares.sum() > 0 else np.eye(len(BAD_LINE_REASONS))[0]
    for d in bad_burst_days:
        assert fault_rng is not None
        frng = fault_rng("bad_lines_burst", d)
        lo = start_ms + d * MS_PER_DAY
        arriving = np.flatnonzero((times[normal_obj] >= lo) & (times[normal_obj] < lo + MS_PER_DAY))
        n_extra = round(arriving.size * mess.burst / (1.0 - mess.burst))
        if arriving.size == 0 or n_extra == 0:
            continue
        objs = normal_obj[frng.choice(arriving, n_extra)]
        extra = frng.choice(len(BAD_LINE_REASONS), n_extra, p=mix)
        who = frng.integers(0, pop.n, n_extra)
        bad_bytes += [
            _bad_line(frng, BAD_LINE_REASONS[r], int(times[o]), str(pop.ids[w]))
            for r, o, w in zip(extra, objs, who, strict=True)
        ]
        bad_obj = np.concatenate([bad_obj, objs])
        bad_pos = np.concatenate([bad_pos, frng.integers(0, 2**62, n_extra)])
        reasons += list(extra)
    bad_reason = np.asarray(reasons, np.int64)
    # Fault volume_drop: half of the customers produce nothing on that day.
    silent = np.zeros(line_ev.size, bool)
    for d in drop_days:
        assert fault_rng is not None
        quiet = fault_rng("volume_drop", d).random(pop.n) < 0.5
        cust = ev["cust"][line_ev]
        silent |= (e_day[line_ev] == d) & (cust >= 0) & quiet[np.maximum(cust, 0)]
    # Fault clickstream_outage: nothing arrives during that day; those lines are lost.
    lost = np.zeros(line_ev.size, bool)
    bad_lost = np.zeros(bad_obj.size, bool)
    for d in outage_days:
        lo, hi = start_ms + d * MS_PER_DAY, start_ms + (d + 1) * MS_PER_DAY
        lost |= (all_times[line_obj] >= lo) & (all_times[line_obj] < hi)
        bad_lost |= (all_times[bad_obj] >= lo) & (all_times[bad_obj] < hi)
    n_lost = int((lost & ~silent).sum() + bad_lost.sum())
    keep = ~(lost | silent)
    line_ev, line_obj, line_pos = line_ev[keep], line_obj[keep], line_pos[keep]
    is_same, is_cross = is_same[keep], is_cross[keep]
    bkeep = np.flatnonzero(~bad_lost)
    bad_obj, bad_pos, bad_reason = bad_obj[bkeep], bad_pos[bkeep], bad_reason[bkeep]
    bad_bytes = [bad_bytes[i] for i in bkeep]
    # Final objects: those holding at least one line, in arrival order then key (the
    # contract's tie-break for "first delivery").
    used = np.flatnonzero(
        np.bincount(np.concatenate([line_obj, bad_obj]), minlength=all_times.size)
    )
    keys = [_object_key(int(all_times[o]), all_keys[16 * o : 16 * o + 16]) for o in used]
    by_arrival = sorted(range(used.size), key=lambda i: (int(all_times[used[i]]), keys[i]))
    rank_order = used[by_arrival]
    obj_key = [keys[i] for i in by_arrival]
    remap = np.full(all_times.size, -1, np.int64)
    remap[rank_order] = np.arange(rank_order.size)
    obj_time = all_times[rank_order]
    line_obj = remap[line_obj]
    bad_obj = remap[bad_obj]
    order = np.lexsort((line_pos, line_obj))
    line_ev, line_obj, line_pos = line_ev[order], line_obj[order], line_pos[order]
    is_same, is_cross = is_same[order], is_cross[order]
    border = np.argsort(bad_obj, kind="stable")
    bad_obj, bad_pos, bad_reason = bad_obj[border], bad_pos[border], bad_reason[border]
    bad_bytes = [bad_bytes[i] for i in border]
    stats = _stream_stats(
        ev,
        start_ms,
        line_ev,
        obj_time[line_obj],
        is_same,
        is_cross,
        bad_reason,
        obj_time[bad_obj],
        n_lost,
    )
    return _Stream(
        ev,
        obj_time,
        obj_key,
        line_obj,
        line_ev,
        line_pos,
        bad_obj,
        bad_pos,
        bad_bytes,
        stats,
        pop.id_num,
    )


def _stream_stats(
    ev: dict[str, np.ndarray],
    start_ms: int,
    line_ev: np.ndarray,
    obj_t: np.ndarray,
    is_same: np.ndarray,
    is_cross: np.ndarray,
    bad_reason: np.ndarray,
    bad_arrival: np.ndarray,
    lost: int,
) -> dict[str, Any]:
    cust = ev["cust"][line_ev]
    e_day = np.floor_divide(ev["t"][line_ev] - start_ms, MS_PER_DAY)
    inside = obj_t < start_ms + (e_day + 1) * MS_PER_DAY + LATENESS_MS
    att = cust >= 0
    # First copy of each event = first line in (arrival, key, line) order, which is the
    # order of the lines here.
    order = np.argsort(line_ev, kind="stable")
    grouped = line_ev[order]
    starts = np.ones(grouped.size, bool)
    starts[1:] = grouped[1:] != grouped[:-1]
    first = np.zeros(line_ev.size, bool)
    first[order[starts]] = True
    src = ev["src"][line_ev[first]]
    day0 = start_ms // MS_PER_DAY

    def by_day(mask: np.ndarray) -> dict[str, int]:
        days = e_day[mask]
        if days.size == 0:
            return {}
        lo = int(days.min())
        counts = np.bincount(days - lo)
        return {
            (_EPOCH + timedelta(days=lo + i + day0)).isoformat(): int(c)
            for i, c in enumerate(counts)
            if c
        }

    # Quarantine is owned by the partition of the object's arrival date (LANDING.md §4).
    quarantined: dict[str, dict[str, int]] = defaultdict(dict)
    late_day = np.floor_divide(obj_t[~inside], MS_PER_DAY)
    groups = [
        (np.floor_divide(bad_arrival[bad_reason == i], MS_PER_DAY), r)
        for i, r in enumerate(BAD_LINE_REASONS)
    ]
    for arrival_days, reason in [*groups, (late_day, "late")]:
        days, counts = np.unique(arrival_days, return_counts=True)
        for d, c in zip(days, counts, strict=True):
            quarantined[(_EPOCH + timedelta(days=int(d))).isoformat()][reason] = int(c)
    return {
        "lines_events": int(line_ev.size),
        "events": int(first.sum()),
        "events_by_shape": {"web": int((src == 0).sum()), "app": int((src == 1).sum())},
        "attributed_events": int((first & att).sum()),
        "anonymous_lines": int((~att).sum()),
        "duplicates": int((att & ~first).sum()),
        "duplicates_same_object": int(is_same.sum()),
        "duplicates_cross_object": int(is_cross.sum()),
        "late_beyond_window": int((~inside).sum()),
        "lost_in_outage": lost,
        "valid_by_day": by_day(att & first & inside),
        "duplicate_by_day": by_day(att & ~first & inside),
        "anonymous_by_day": by_day(~att & inside),
        "bad_lines": {r: int((bad_reason == i).sum()) for i, r in enumerate(BAD_LINE_REASONS)},
        "quarantined_by_day": dict(sorted(quarantined.items())),
    }


def _render_objects(stream: _Stream) -> Iterator[tuple[int, str, bytes]]:
    """Yield (arrival ms, key, gzip bytes) per object in arrival order, one day at a time."""
    ev = stream.ev
    anon_pool = int(ev["anon"].max()) + 1 if ev["anon"].size else 1
    anon_hex = _hex(np.frombuffer(_anon_pool_bytes(anon_pool), np.uint8).reshape(anon_pool, 8))
    day_of_obj = np.floor_divide(stream.obj_time, MS_PER_DAY)
    bounds = np.flatnonzero(np.diff(day_of_obj)) + 1
    chunks = np.split(np.arange(stream.obj_time.size), bounds)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        yield from _render_chunks(stream, chunks, anon_hex, pool)


def _render_chunks(
    stream: _Stream, chunks: list[np.ndarray], anon_hex: np.ndarray, pool: ThreadPoolExecutor
) -> Iterator[tuple[int, str, bytes]]:
    ev = stream.ev
    pop_ids = stream.pop_ids
    for chunk in chunks:
        if chunk.size == 0:
            continue
        o0, o1 = int(chunk[0]), int(chunk[-1]) + 1
        l0, l1 = np.searchsorted(stream.line_obj, [o0, o1])
        b0, b1 = np.searchsorted(stream.bad_obj, [o0, o1])
        n_lines = (l1 - l0) + (b1 - b0)
        objs = np.concatenate([stream.line_obj[l0:l1], stream.bad_obj[b0:b1]])
        poss = np.concatenate([stream.line_pos[l0:l1], stream.bad_pos[b0:b1]])
        order = np.lexsort((poss, objs))
        where = np.empty(n_lines, np.int64)
        where[order] = np.arange(n_lines)  # final line position of each input row
        lengths = np.zeros(n_lines, np.int64)
        sub = _take(ev, stream.line_ev[l0:l1])
        builders = []
        for shape in (0, 1):
            rows = np.flatnonzero(sub["src"] == shape)
            if rows.size == 0:
                continue
            b = _render(_take(sub, rows), pop_ids, anon_hex)
            lengths[where[rows]] = b.lengths()
            builders.append((b, where[rows]))
        raw = stream.bad_bytes[b0:b1]
        raw_where = where[(l1 - l0) :]
        lengths[raw_where] = [len(r) for r in raw]
        ends = np.cumsum(lengths + 1)
        starts = ends - lengths - 1
        buf = np.empty(int(ends[-1]) if n_lines else 0, np.uint8)
        for b, at in builders:
            b.write(buf, starts[at])
        for r, at in zip(raw, raw_where, strict=True):
            buf[starts[at] : starts[at] + len(r)] = np.frombuffer(r, np.uint8)
        buf[ends - 1] = ord("\n")
        obj_sorted = objs[order]
        cut = np.searchsorted(obj_sorted, np.arange(o0, o1 + 1))
        byte_cut = np.concatenate([[0], ends])[cut]
        data = buf.tobytes()
        payloads = [data[byte_cut[i] : byte_cut[i + 1]] for i in range(o1 - o0)]
        for o, gz in zip(range(o0, o1), pool.map(_gzip, payloads), strict=True):
            yield int(stream.obj_time[o]), stream.obj_key[o], gz


def _gzip(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0); zlib releases the GIL, so objects compress in parallel."""
    return gzip.compress(data, _GZIP_LEVEL, mtime=0)


def _anon_pool_bytes(n: int) -> bytes:
    """Device ids derived from their index (stable, independent of the event rng)."""
    r = np.random.default_rng(np.random.SeedSequence([0xA11, n]))
    return r.bytes(8 * n)


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


_WORLD, _BILLING, _CLICKS, _STREAM, _FAULT = range(1, 6)


def _rng(seed: int, *tags: int) -> np.random.Generator:
    """An independent generator per purpose (and per day), all derived from the seed."""
    return np.random.default_rng([seed, *tags])


def _ms(d: date) -> int:
    return (d - _EPOCH).days * MS_PER_DAY


def generate_landing(
    write: Callable[[str, bytes], None],
    config: GeneratorConfig,
    *,
    delete: Callable[[str], None] | None = None,
) -> GenerationSummary:
    """Generate the whole landing zone of ``config`` through ``write(key, data)``.

    Keys are relative to the landing root. Writes come in landing-time order: billing for
    day D at D+1 02:30-03:30 UTC, clickstream objects at their arrival time. ``delete`` is
    only used by the ``billing_redelivery`` fault (to remove a part the re-delivery no
    longer has); without it the re-delivery keeps the same number of parts.
    """
    if config.days < 1 or config.customers < 1:
        raise ValueError("days and customers must be >= 1")
    faults_by_day: dict[int, set[str]] = {}
    for f in config.faults:
        if f.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {f.kind!r}")
        d = (f.day - config.start).days
        if not 0 <= d < config.days:
            raise ValueError(f"fault {f.kind}:{f.day} is outside the generated days")
        faults_by_day.setdefault(d, set()).add(f.kind)

    def days_with(kind: str) -> list[int]:
        return sorted(d for d, kinds in faults_by_day.items() if kind in kinds)

    days, n, seed = config.days, config.customers, config.seed & (2**63 - 1)
    mess = config.mess

    def fault_rng(kind: str, day: int) -> np.random.Generator:
        return _rng(seed, _FAULT, FAULT_KINDS.index(kind), day)

    world = _rng(seed, _WORLD)
    start_ms = _ms(config.start)
    pop = _make_population(world, n, days, prestart=0.65)
    hist = _simulate_history(world, pop, days, config.grace_days)

    # Billing deliveries: (time ms, sequence, operations). One generator per day, so that
    # a fault on one day leaves every other day byte-identical.
    first_day = int(min(pop.signup.min(), 0))
    dates = (_iso_table(first_day, days + 3, config.start), first_day)
    deliveries: list[tuple[int, int, list[tuple[str, str, bytes]]]] = []
    billing_days = billing_parts = billing_rows = billing_deletes = 0
    applied: list[str] = []
    for d in range(days):
        kinds = faults_by_day.get(d, set())
        day_iso = (config.start + timedelta(days=d)).isoformat()
        applied += [f"{k}:{day_iso}" for k in sorted(kinds)]
        brng = _rng(seed, _BILLING, d)
        style = _billing_style(brng)
        when = start_ms + (d + 1) * MS_PER_DAY + 9_000_000 + int(brng.integers(0, 3600)) * 1000
        frng = fault_rng("billing_redelivery", d)
        header, data, mrr_pos = _billing_table(brng, frng, pop, hist, d, style, dates, kinds)
        if "missing_billing" in kinds:
            continue
        prefix = f"billing/dt={day_iso}/"
        success = [] if "billing_no_success" in kinds else [("put", prefix + "_SUCCESS", b"")]
        if "billing_redelivery" in kinds:
            first = _csv_parts(header, _corrupt(frng, data, mrr_pos, pop), 3)
            ops = [("put", f"{prefix}part-{i:05d}.csv.gz", p) for i, p in enumerate(first)]
            deliveries.append((when, len(deliveries), ops + success))
            billing_parts += len(first)
            n_again = 2 if delete is not None else 3
            parts = _csv_parts(header, data, n_again)
            ops = [("put", f"{prefix}part-{i:05d}.csv.gz", p) for i, p in enumerate(parts)]
            ops += [("delete", f"{prefix}part-{i:05d}.csv.gz", b"") for i in range(n_again, 3)]
            billing_deletes += 3 - n_again
            when = start_ms + (d + 2) * MS_PER_DAY + 11 * MS_PER_HOUR
        else:
            parts = _csv_parts(header, data, style.n_parts)
            ops = [("put", f"{prefix}part-{i:05d}.csv.gz", p) for i, p in enumerate(parts)]
        deliveries.append((when, len(deliveries), ops + success))
        billing_parts += len(parts)
        billing_rows += len(data[0])
        billing_days += bool(success)

    # Clickstream.
    weekend = np.array([(config.start + timedelta(days=d)).weekday() >= 5 for d in range(days)])
    week = np.where(weekend, 0.45, 1.0) / ((5 * 1.0 + 2 * 0.45) / 7)
    base = config.events_per_active_customer_day * pop.engagement
    fading = 1.0 - 0.8 * hist.progress  # visits fall towards a cancellation
    fading /= fading[hist.present_during].mean() if hist.present_during.any() else 1.0
    lam = np.where(
        hist.present_during,
        base[None, :] * week[:, None] * fading,
        np.where(pop.signup[None, :] <= np.arange(days)[:, None], 0.01 * base[None, :], 0.0),
    )
    clicks = _rng(seed, _CLICKS)
    counts = clicks.poisson(lam)
    anon_counts = clicks.poisson(mess.anonymous / (1.0 - mess.anonymous) * lam.sum(axis=1))
    ev = _make_events(clicks, pop, start_ms, counts, hist.progress, anon_counts)
    stream = _build_stream(
        _rng(seed, _STREAM),
        pop,
        start_ms,
        days,
        ev,
        fault_rng=fault_rng,
        outage_days=days_with("clickstream_outage"),
        burst_days=days_with("malformed_burst"),
        late_fault_days=days_with("late_events"),
        drop_days=days_with("volume_drop"),
        bad_burst_days=days_with("bad_lines_burst"),
        mess=mess,
    )

    keys_written = 0

    def emit_billing(upto: int | None) -> None:
        nonlocal keys_written
        while deliveries and (upto is None or deliveries[0][0] <= upto):
            _, _, ops = deliveries.pop(0)
            for op, key, data in ops:
                if op == "put":
                    write(key, data)
                    keys_written += 1
                else:
                    assert delete is not None
                    delete(key)

    deliveries.sort(key=lambda x: (x[0], x[1]))
    n_objects = 0
    for ms, key, data in _render_objects(stream):
        emit_billing(ms)
        write(key, data)
        keys_written += 1
        n_objects += 1
    emit_billing(None)

    labelled, true_pos, naive_pos = _label_counts(
        hist, days, config.horizon_days, config.grace_days
    )
    return GenerationSummary(
        billing_days=billing_days,
        billing_parts=billing_parts,
        billing_rows=billing_rows,
        billing_deletes=billing_deletes,
        clickstream_objects=n_objects,
        clickstream_lines=stream.stats["lines_events"] + len(stream.bad_bytes),
        **{k: v for k, v in stream.stats.items() if k != "lines_events"},
        faults_applied=tuple(applied),
        active_customer_days=int(hist.present_during.sum()),
        cancellations=int(hist.cancel_day.size),
        reactivations=int(hist.react_day.size),
        reactivations_within_grace=int(hist.cancel_saved.sum()),
        labelled_customer_days=labelled,
        true_churn_labels=true_pos,
        naive_churn_labels=naive_pos,
        keys_written=keys_written,
    )


def generate_clickstream_day(day: date, n_events: int, seed: int) -> list[tuple[str, bytes]]:
    """Exactly ``n_events`` distinct events of one day as (key, gzip bytes), in arrival order.

    For benchmarks: ``n_events // 7`` active customers and 10% anonymous events. Objects
    arrive from the day's 00h to the next day's 02h, plus a few late ones after that; about
    the default :class:`MessProfile`'s duplicates and bad lines are added, as in
    :func:`generate_landing`.
    """
    rng = np.random.default_rng(seed)
    n = max(1, n_events // 7)
    pop = _make_population(rng, n, 1, prestart=1.0)
    n_anon = round(0.1 * n_events)
    n_att = max(n_events - n_anon, 0)
    counts = rng.multinomial(n_att, pop.engagement / pop.engagement.sum())[None, :]
    progress = np.where(rng.random(n) < 0.1, rng.random(n), 0.0)[None, :]
    start_ms = _ms(day)
    ev = _make_events(rng, pop, start_ms, counts, progress, np.array([n_anon]))
    stream = _build_stream(rng, pop, start_ms, 1, ev)
    return [(k, data) for _, k, data in _render_objects(stream)]
