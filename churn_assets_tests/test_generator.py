"""The synthetic landing zone follows LANDING.md, is deterministic, and plants what it says.

The checks read the written bytes back with independent, plain-Python readers written from
the contract (csv module, json module), never with the generator's own internals.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from churn_assets.core.generator import (
    BILLING_COLUMNS,
    FAULT_KINDS,
    Fault,
    GenerationSummary,
    GeneratorConfig,
    MessProfile,
    generate_clickstream_day,
    generate_landing,
    parse_fault,
)

START = date(2026, 3, 1)
KEY_RE = re.compile(
    r"^clickstream/(\d{4})/(\d{2})/(\d{2})/(\d{2})/churn-clickstream-1-"
    r"(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.gz$"
)
BILLING_RE = re.compile(r"^billing/dt=(\d{4}-\d{2}-\d{2})/(part-\d{5}\.csv\.gz|_SUCCESS)$")
BOOLS = {"0": False, "1": True, "false": False, "true": True}
TS_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})$"
)
LATENESS = timedelta(hours=2)


class Landing:
    """An in-memory landing zone that records every operation in order."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.ops: list[tuple[str, str, bytes]] = []

    def write(self, key: str, data: bytes) -> None:
        self.objects[key] = data
        self.ops.append(("put", key, data))

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.ops.append(("delete", key, b""))


def run(config: GeneratorConfig, *, with_delete: bool = True) -> tuple[Landing, GenerationSummary]:
    landing = Landing()
    summary = generate_landing(
        landing.write, config, delete=landing.delete if with_delete else None
    )
    return landing, summary


# ---------------------------------------------------------------------------------------
# Independent readers, written from the contract
# ---------------------------------------------------------------------------------------


def read_csv_part(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    text = gzip.decompress(data).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    header = [h.strip().lower() for h in rows[0]]
    return rows[0], [dict(zip(header, r, strict=True)) for r in rows[1:]]


def billing_days(landing: Landing) -> dict[str, list[dict[str, str]]]:
    """dt -> rows of the currently landed parts of every day that has a _SUCCESS."""
    out: dict[str, list[dict[str, str]]] = {}
    for key in sorted(landing.objects):
        m = BILLING_RE.match(key)
        if m and m.group(2) == "_SUCCESS":
            dt = m.group(1)
            prefix = f"billing/dt={dt}/part-"
            rows: list[dict[str, str]] = []
            for k in sorted(k for k in landing.objects if k.startswith(prefix)):
                rows += read_csv_part(landing.objects[k])[1]
            out[dt] = rows
    return out


def norm_id(text: str) -> str:
    return text.strip().upper()


def arrival_of(key: str) -> datetime:
    m = KEY_RE.match(key)
    assert m, key
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[4:])
    return datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc)


def parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    m = TS_RE.match(value)
    if not m:
        return None
    day, hh, mm, ss, frac, off = m.groups()
    ms = int((frac or "0").ljust(3, "0")[:3])
    t = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}").replace(tzinfo=timezone.utc)
    t += timedelta(milliseconds=ms)
    if off not in ("Z", "z"):
        sign = 1 if off[0] == "+" else -1
        digits = off[1:].replace(":", "")
        t -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return t


def parse_ms(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        return None
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=value)


WEB_TYPES = {"page_view": "page_view", "hover": "hover", "click": "click"}
WEB_TYPES["support_chat"] = "support_contact"
APP_TYPES = {"ui.page_view": "page_view", "ui.hover": "hover", "ui.click": "click"}
APP_TYPES["support.contact"] = "support_contact"


@dataclass
class Record:
    key: str
    arrival: datetime
    line_no: int
    reason: str | None  # None when the record is a well-formed event
    event_id: str | None = None
    customer_id: str | None = None
    event_type: str | None = None
    time: datetime | None = None
    element: str | None = None
    page: str | None = None
    source: str | None = None
    raw: dict | None = None


def classify(key: str, arrival: datetime, line_no: int, line: bytes) -> Record:
    """Contract section 4, in order: json, shape, timestamp, event type."""
    try:
        obj = json.loads(line)
    except ValueError:
        return Record(key, arrival, line_no, "invalid_json")
    if not isinstance(obj, dict):
        return Record(key, arrival, line_no, "unknown_shape")
    web = {"event_id", "event", "ts"} <= obj.keys()
    app = {"event_id", "event_type", "timestamp_ms"} <= obj.keys()
    if web == app:
        return Record(key, arrival, line_no, "unknown_shape")
    t = parse_ts(obj["ts"]) if web else parse_ms(obj["timestamp_ms"])
    if t is None:
        return Record(key, arrival, line_no, "bad_timestamp")
    etype = (WEB_TYPES if web else APP_TYPES).get(obj["event"] if web else obj["event_type"])
    if etype is None:
        return Record(key, arrival, line_no, "unknown_event_type")
    if web:
        cid = obj.get("customerId")
        props = obj.get("props")
        props = json.loads(props) if isinstance(props, str) else None
        props = props if isinstance(props, dict) else {}
        element, page = props.get("element"), props.get("page")
    else:
        user = obj.get("user") if isinstance(obj.get("user"), dict) else {}
        cid = user.get("customer_id")
        ctx = obj.get("context") if isinstance(obj.get("context"), dict) else {}
        el = ctx.get("element") if isinstance(ctx.get("element"), dict) else {}
        element = el.get("id")
        page = (ctx.get("page") or {}).get("path")
    cid = cid.strip().upper() if isinstance(cid, str) else None
    return Record(
        key,
        arrival,
        line_no,
        None,
        obj["event_id"],
        cid or None,
        etype,
        t,
        element,
        page,
        "web" if web else "app",
        obj,
    )


def read_clickstream(landing: Landing) -> list[Record]:
    records = []
    keys = sorted(
        (k for k in landing.objects if k.startswith("clickstream/")),
        key=lambda k: (arrival_of(k), k),
    )
    for key in keys:
        arrival = arrival_of(key)
        lines = gzip.decompress(landing.objects[key]).split(b"\n")
        assert lines[-1] == b"", "every record ends with a newline"
        for i, line in enumerate(lines[:-1], start=1):
            records.append(classify(key, arrival, i, line))
    return records


def accounting(records: list[Record]) -> dict[str, Counter]:
    """Per event date: valid, duplicate, anonymous (inside the window); late/future/bad."""
    out: dict[str, Counter] = defaultdict(Counter)
    seen: set[str] = set()
    for r in records:  # already in (arrival, key, line) order
        if r.reason is not None:
            out["bad"][r.reason] += 1
            out["by_arrival"][(r.arrival.date().isoformat(), r.reason)] += 1
            continue
        assert r.time is not None
        e = r.time.date()
        window_end = datetime(e.year, e.month, e.day, tzinfo=timezone.utc) + timedelta(1)
        if r.arrival >= window_end + LATENESS or r.arrival.date() < e:
            reason = "late" if e < r.arrival.date() else "future"
            out["bad"][reason] += 1
            out["by_arrival"][(r.arrival.date().isoformat(), reason)] += 1
        elif r.customer_id is None:
            out["anonymous"][e.isoformat()] += 1
        elif r.event_id in seen:
            out["duplicate"][e.isoformat()] += 1
        else:
            seen.add(r.event_id)
            out["valid"][e.isoformat()] += 1
    return out


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


SMALL = GeneratorConfig(start=START, days=10, customers=40, seed=11)
MEDIUM = GeneratorConfig(start=START, days=100, customers=400, seed=5)


@pytest.fixture(scope="module")
def small() -> tuple[Landing, GenerationSummary]:
    return run(SMALL)


@pytest.fixture(scope="module")
def small_records(small: tuple[Landing, GenerationSummary]) -> list[Record]:
    return read_clickstream(small[0])


@pytest.fixture(scope="module")
def medium() -> tuple[Landing, GenerationSummary]:
    return run(MEDIUM)


# ---------------------------------------------------------------------------------------
# Faults and config
# ---------------------------------------------------------------------------------------


def test_parse_fault_round_trips_every_kind() -> None:
    for kind in FAULT_KINDS:
        assert parse_fault(f"{kind}:2026-03-05") == Fault(kind, date(2026, 3, 5))
    assert parse_fault(" volume_drop : 2026-03-05 ") == Fault("volume_drop", date(2026, 3, 5))


@pytest.mark.parametrize("text", ["missing_billing", "nope:2026-03-05", "volume_drop:2026-13-01"])
def test_parse_fault_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="fault"):
        parse_fault(text)


def test_fault_outside_the_generated_days_is_rejected() -> None:
    cfg = GeneratorConfig(
        start=START, days=3, customers=5, faults=(Fault("volume_drop", START - timedelta(1)),)
    )
    with pytest.raises(ValueError, match="outside"):
        generate_landing(lambda k, d: None, cfg)


# ---------------------------------------------------------------------------------------
# Billing
# ---------------------------------------------------------------------------------------


def test_every_billing_day_has_parts_then_success(small: tuple[Landing, GenerationSummary]) -> None:
    landing, summary = small
    keys = [k for op, k, _ in landing.ops if k.startswith("billing/")]
    assert all(BILLING_RE.match(k) for k in keys)
    by_day: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        by_day[BILLING_RE.match(k).group(1)].append(k.rsplit("/", 1)[1])  # type: ignore[union-attr]
    expected = [(START + timedelta(d)).isoformat() for d in range(SMALL.days)]
    assert sorted(by_day) == expected
    for names in by_day.values():
        assert names[-1] == "_SUCCESS" and names.count("_SUCCESS") == 1
        parts = names[:-1]
        assert 1 <= len(parts) <= 3
        assert parts == [f"part-{i:05d}.csv.gz" for i in range(len(parts))]
    assert all(landing.objects[k] == b"" for k in keys if k.endswith("_SUCCESS"))
    assert summary.billing_days == SMALL.days


def test_billing_csv_follows_the_contract(small: tuple[Landing, GenerationSummary]) -> None:
    landing, summary = small
    days = billing_days(landing)
    n_rows = 0
    for dt, rows in days.items():
        assert rows, dt
        n_rows += len(rows)
        ids = [norm_id(r["customer_id"]) for r in rows]
        assert len(set(ids)) == len(ids), "one row per account"
        for r in rows:
            assert set(BILLING_COLUMNS) <= r.keys()
            assert re.fullmatch(r"C\d{7}", norm_id(r["customer_id"]))
            assert r["snapshot_date"] == dt
            assert date.fromisoformat(r["signup_date"]) <= date.fromisoformat(dt)
            assert r["plan"].lower() in {"basic", "plus", "pro"}
            assert int(r["seats"]) >= 1
            assert re.fullmatch(r"\d+\.\d{2}", r["mrr"])
            assert r["cancelled_service"].lower() in BOOLS
            assert r["new_customer"].lower() in BOOLS
            assert int(r["support_calls"]) >= 0
            for col in ("cancelled_at", "reactivated_at"):
                assert r[col] == "" or date.fromisoformat(r[col]) <= date.fromisoformat(dt)
            assert BOOLS[r["cancelled_service"].lower()] == (r["cancelled_at"] != "")
            assert BOOLS[r["new_customer"].lower()] == (r["reactivated_at"] != "")
    assert n_rows == summary.billing_rows


def check_history(days: dict[str, list[dict[str, str]]]) -> None:
    """Accounts never disappear, flags are sticky, at most one date change per day."""
    prev: dict[str, dict[str, str]] = {}
    for dt in sorted(days):
        now = {norm_id(r["customer_id"]): r for r in days[dt]}
        assert prev.keys() <= now.keys(), f"{dt}: accounts disappeared"
        for cid, r in now.items():
            before = prev.get(cid)
            if before is None:
                continue
            for flag in ("cancelled_service", "new_customer"):
                assert BOOLS[r[flag].lower()] >= BOOLS[before[flag].lower()], (dt, cid, flag)
            changed = [c for c in ("cancelled_at", "reactivated_at") if r[c] != before[c]]
            assert len(changed) <= 1, (dt, cid, changed)
            for c in changed:
                assert r[c] == dt, "a change carries the extract's date"
        prev = now


def test_billing_history_rules(small: tuple[Landing, GenerationSummary], medium) -> None:
    check_history(billing_days(small[0]))
    check_history(billing_days(medium[0]))


def test_billing_variety_over_a_longer_run(medium: tuple[Landing, GenerationSummary]) -> None:
    landing, _ = medium
    headers, spellings, names, raw_ids, parts_per_day = [], set(), set(), set(), Counter()
    for key, data in landing.objects.items():
        if key.endswith(".csv.gz"):
            parts_per_day[key.split("/")[1]] += 1
            header, rows = read_csv_part(data)
            headers.append(header)
            for r in rows:
                spellings |= {r["cancelled_service"], r["new_customer"]}
                names.add(r["account_name"])
                raw_ids.add(r["customer_id"])
    canonical = list(BILLING_COLUMNS)
    lowered = [[h.lower() for h in hd] for hd in headers]
    assert any([h for h in hd if h in canonical] != canonical for hd in lowered), "shuffled order"
    assert any(set(hd) - set(canonical) for hd in lowered), "an unknown extra column"
    assert any(hd != [h.lower() for h in hd] for hd in headers), "header case varies"
    assert {"0", "1", "true", "false", "TRUE", "FALSE", "True", "False"} <= spellings
    assert any("," in n for n in names) and any('"' in n for n in names)
    assert any(not n.isascii() for n in names)
    assert any(i != i.strip() for i in raw_ids) and any(i != i.upper() for i in raw_ids)
    assert set(parts_per_day.values()) == {1, 2, 3}


def reference_labels(days: dict[str, list[dict[str, str]]], horizon: int, grace: int):
    """Contract section 3 labels, from the extracts alone (cancel/re-activation history)."""
    order = sorted(days)
    cancels: dict[str, list[date]] = defaultdict(list)
    reacts: dict[str, list[date]] = defaultdict(list)
    state: dict[str, dict[str, dict[str, str]]] = {}
    for dt in order:
        now = {norm_id(r["customer_id"]): r for r in days[dt]}
        state[dt] = now
        for cid, r in now.items():
            if r["cancelled_at"] and r["cancelled_at"] not in cancels[cid]:
                cancels[cid].append(r["cancelled_at"])
            if r["reactivated_at"] and r["reactivated_at"] not in reacts[cid]:
                reacts[cid].append(r["reactivated_at"])
    n = true_pos = naive_pos = 0
    for i, dt in enumerate(order):
        d = date.fromisoformat(dt)
        if i + horizon + grace >= len(order):
            break
        for cid, r in state[dt].items():
            ca, ra = r["cancelled_at"], r["reactivated_at"]
            if ca and (not ra or ra < ca):
                continue  # cancelled at end of D: not labelled
            n += 1
            churn = False
            for c in map(date.fromisoformat, cancels[cid]):
                if d < c <= d + timedelta(horizon):
                    saved = any(
                        c <= date.fromisoformat(x) <= c + timedelta(grace) for x in reacts[cid]
                    )
                    churn |= not saved
            true_pos += churn
            naive_pos += BOOLS[state[order[i + horizon]][cid]["cancelled_service"].lower()]
    return n, true_pos, naive_pos


def test_shares_at_a_larger_scale(medium: tuple[Landing, GenerationSummary]) -> None:
    _, s = medium
    assert 0.017 < sum(s.bad_lines.values()) / s.clickstream_lines < 0.023  # the default ~2%
    assert 0.08 < s.anonymous_lines / s.clickstream_lines < 0.14
    assert 0.008 < s.duplicates / s.attributed_events < 0.016
    assert 0 < s.late_beyond_window < 0.001 * s.events
    # events_per_active_customer_day is the mean volume of an active customer-day
    per_day = s.attributed_events / s.active_customer_days
    assert 4.5 < per_day < 7.5


def test_true_label_differs_from_naive(medium: tuple[Landing, GenerationSummary]) -> None:
    landing, summary = medium
    n, true_pos, naive_pos = reference_labels(billing_days(landing), 30, 30)
    assert (n, true_pos, naive_pos) == (
        summary.labelled_customer_days,
        summary.true_churn_labels,
        summary.naive_churn_labels,
    )
    assert 0.08 <= true_pos / n <= 0.20
    assert naive_pos > true_pos * 1.2, "re-activations make the naive label visibly wrong"
    assert summary.reactivations_within_grace > 0
    assert 0.25 <= summary.reactivations / summary.cancellations <= 0.6


def test_cancel_reactivate_cancel_sequences_exist(
    medium: tuple[Landing, GenerationSummary],
) -> None:
    days = billing_days(medium[0])
    history: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for dt in sorted(days):
        for r in days[dt]:
            cid = norm_id(r["customer_id"])
            for col in ("cancelled_at", "reactivated_at"):
                event = (col, r[col])
                if r[col] and event not in history[cid] and r[col] >= sorted(days)[0]:
                    history[cid].append(event)
    kinds = ["".join("c" if c == "cancelled_at" else "r" for c, _ in h) for h in history.values()]
    assert any("crc" in k for k in kinds)


# ---------------------------------------------------------------------------------------
# Clickstream
# ---------------------------------------------------------------------------------------


def test_clickstream_keys_and_arrival_order(small: tuple[Landing, GenerationSummary]) -> None:
    landing, summary = small
    keys = [k for _, k, _ in landing.ops if k.startswith("clickstream/")]
    assert len(keys) == summary.clickstream_objects > 0
    arrivals = []
    for k in keys:
        m = KEY_RE.match(k)
        assert m, k
        assert m.groups()[:4] == m.groups()[4:8], "folder = arrival hour in the name"
        arrivals.append(arrival_of(k))
    assert arrivals == sorted(arrivals), "objects are written in arrival order"
    gaps = np.diff([a.timestamp() for a in arrivals])
    assert gaps.min() >= 300 and np.median(gaps) <= 900


def test_objects_per_day_at_full_scale_activity() -> None:
    objs = generate_clickstream_day(START, 30_000, seed=3)
    days = Counter(arrival_of(k).date() for k, _ in objs)
    assert 96 <= days[START] <= 290
    assert all(d in (START, START + timedelta(1), START + timedelta(2)) for d in days)


def test_billing_and_clickstream_are_interleaved_by_landing_time(small) -> None:
    """The extract of D lands at D+1 02:30-03:30 UTC, between the objects around it."""
    landing, _ = small
    keys = [k for _, k, _ in landing.ops]
    for d in range(SMALL.days):
        day = START + timedelta(d)
        pos = [i for i, k in enumerate(keys) if k.startswith(f"billing/dt={day.isoformat()}/")]
        lands = datetime.combine(day + timedelta(1), datetime.min.time(), timezone.utc)
        before = [arrival_of(k) for k in keys[: pos[0]] if k.startswith("clickstream/")]
        after = [arrival_of(k) for k in keys[pos[-1] :] if k.startswith("clickstream/")]
        assert max(before) < lands + timedelta(hours=3, minutes=30)
        assert not after or min(after) >= lands + timedelta(hours=2, minutes=30)
        assert pos == list(range(pos[0], pos[-1] + 1)), "a delivery is written in one go"


def test_both_shapes_and_their_variations(small_records: list[Record]) -> None:
    ok = [r for r in small_records if r.reason is None]
    raw = [r.raw for r in ok]
    assert {r.source for r in ok} == {"web", "app"}
    web = [x for x in raw if "ts" in x]
    app = [x for x in raw if "timestamp_ms" in x]
    assert all(isinstance(x["props"], str) for x in web), "props is a JSON-encoded string"
    assert all(isinstance(json.loads(x["props"]), dict) for x in web)
    assert any(x["ts"].endswith("Z") for x in web)
    assert any(re.search(r"[+-]\d{2}:\d{2}$", x["ts"]) for x in web)
    kinds = Counter(type(x["timestamp_ms"]) for x in app)
    assert kinds[int] > 0.98 * len(app), "timestamp_ms is an integer (rarely 123.0)"
    web_ids = [x["customerId"] for x in web if isinstance(x.get("customerId"), str)]
    app_ids = [
        x["user"]["customer_id"]
        for x in app
        if isinstance(x.get("user"), dict) and isinstance(x["user"].get("customer_id"), str)
    ]
    for ids in (web_ids, app_ids):
        assert any(i != i.strip() for i in ids), "stray whitespace"
        assert any(i.strip() != i.strip().upper() for i in ids), "stray case"
    assert any("customerId" not in x for x in web) and any(x.get("customerId") is None for x in web)
    assert any("user" not in x for x in app) and any(x.get("user") is None for x in app)
    elements = Counter(r.element for r in ok)
    for name in ("subscribe_button", "subscribe-btn", "subscribe-btn-footer", None):
        assert elements[name] > 0, name
    assert any(e and not e.strip().lower().startswith("subscribe") for e in elements)
    props = [json.loads(x["props"]) for x in web]
    assert any("element" not in p for p in props) and any(p.get("element") is None for p in props)
    known = {"event_id", "event", "ts", "customerId", "anonymousId", "props"}
    known |= {"event_type", "timestamp_ms", "user", "context", "app_version"}
    assert any(set(x) - known for x in raw), "unknown extra fields"


def test_accounting_matches_the_summary(small, small_records) -> None:
    _, summary = small
    acc = accounting(small_records)
    assert dict(acc["valid"]) == summary.valid_by_day
    assert dict(acc["duplicate"]) == summary.duplicate_by_day
    assert dict(acc["anonymous"]) == summary.anonymous_by_day
    bad = acc["bad"]
    assert bad["late"] == summary.late_beyond_window > 0
    for reason, count in summary.bad_lines.items():
        assert bad[reason] == count, reason
    assert len(small_records) == summary.clickstream_lines
    flat = {
        (d, r): c for d, reasons in summary.quarantined_by_day.items() for r, c in reasons.items()
    }
    assert flat == dict(acc["by_arrival"])
    assert set(bad) <= {"late", *summary.bad_lines}


def test_duplicates_anonymous_and_bad_lines_are_planted(small, small_records) -> None:
    _, summary = small
    copies: dict[str, list[str]] = defaultdict(list)
    for r in small_records:
        if r.reason is None and r.customer_id is not None:
            copies[r.event_id].append(r.key)  # type: ignore[index]
    dups = [keys for keys in copies.values() if len(keys) > 1]
    assert any(len(set(k)) == 1 for k in dups), "duplicate inside one object"
    assert any(len(set(k)) > 1 for k in dups), "duplicate across objects"
    assert summary.duplicates == sum(len(k) - 1 for k in dups)
    anonymous = sum(1 for r in small_records if r.reason is None and r.customer_id is None)
    assert anonymous == summary.anonymous_lines > 0
    assert all(count > 0 for count in summary.bad_lines.values())
    assert summary.events_by_shape["web"] > 0 and summary.events_by_shape["app"] > 0


def test_normal_lateness_mixes_dates_around_midnight(small_records: list[Record]) -> None:
    ok = [r for r in small_records if r.reason is None and r.time.date() <= r.arrival.date()]  # type: ignore[union-attr]
    mixed = defaultdict(set)
    for r in ok:
        mixed[r.key].add(r.time.date())  # type: ignore[union-attr]
        assert r.time <= r.arrival + timedelta(seconds=1), "nothing arrives before it happened"
    assert any(len(d) == 2 for d in mixed.values())
    late = [
        r
        for r in ok
        if r.arrival
        >= datetime.combine(r.time.date() + timedelta(1), datetime.min.time(), timezone.utc)
        + LATENESS
    ]  # type: ignore[union-attr]
    assert 0 < len(late) < 0.002 * len(ok)


def test_generation_is_deterministic() -> None:
    cfg = GeneratorConfig(
        start=START, days=4, customers=25, seed=3, faults=(Fault("billing_redelivery", START),)
    )
    a, sa = run(cfg)
    b, sb = run(cfg)
    assert a.ops == b.ops
    assert sa == sb
    c, _ = run(GeneratorConfig(start=START, days=4, customers=25, seed=4))
    assert c.ops != a.ops


def test_generate_clickstream_day_has_the_requested_volume() -> None:
    objs = generate_clickstream_day(START, 20_000, seed=1)
    landing = Landing()
    for k, d in objs:
        landing.write(k, d)
    records = read_clickstream(landing)
    ids = {r.event_id for r in records if r.reason is None and r.time.date() <= r.arrival.date()}  # type: ignore[union-attr]
    assert len(ids) == 20_000, "distinct events (future-clock records are bad lines)"
    dates = {r.time.date() for r in records if r.reason is None and r.event_id in ids}  # type: ignore[union-attr]
    assert dates <= {START, START + timedelta(1)}
    assert Counter(r.reason for r in records)["invalid_json"] > 0
    assert [arrival_of(k) for k, _ in objs] == sorted(arrival_of(k) for k, _ in objs)


# ---------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------

FAULT_DAY = START + timedelta(4)


@functools.cache
def faulted(kind: str | None, *, with_delete: bool = True) -> tuple[Landing, GenerationSummary]:
    faults = (Fault(kind, FAULT_DAY),) if kind else ()
    cfg = GeneratorConfig(start=START, days=8, customers=60, seed=21, faults=faults)
    return run(cfg, with_delete=with_delete)


def in_fault_scope(kind: str, key: str) -> bool:
    """Keys a fault on FAULT_DAY is allowed to change (LANDING.md layout)."""
    if key.startswith("billing/"):
        return kind.startswith(("billing", "missing", "schema")) and key.startswith(
            f"billing/dt={FAULT_DAY.isoformat()}/"
        )
    arrival = arrival_of(key)
    day_start = datetime.combine(FAULT_DAY, datetime.min.time(), timezone.utc)
    if kind in ("clickstream_outage", "malformed_burst", "bad_lines_burst"):
        return arrival.date() == FAULT_DAY
    if kind in ("volume_drop", "late_events"):
        window = day_start <= arrival < day_start + timedelta(1) + LATENESS
        return window or (kind == "late_events" and arrival.date() == FAULT_DAY + timedelta(2))
    return False


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_fault_changes_only_what_it_documents(kind: str) -> None:
    clean, _ = faulted(None)
    dirty, summary = faulted(kind)
    changed = {
        k
        for k in clean.objects.keys() | dirty.objects.keys()
        if clean.objects.get(k) != dirty.objects.get(k)
    }
    assert changed, "the fault has an effect"
    assert all(in_fault_scope(kind, k) for k in changed), sorted(changed)[:3]
    keep = [op for op in clean.ops if not in_fault_scope(kind, op[1])]
    assert keep == [op for op in dirty.ops if not in_fault_scope(kind, op[1])], "same otherwise"
    assert summary.faults_applied == (f"{kind}:{FAULT_DAY}",)


def day_keys(landing: Landing, day: date) -> list[str]:
    return sorted(k for k in landing.objects if k.startswith(f"billing/dt={day.isoformat()}/"))


def test_missing_billing() -> None:
    landing, summary = faulted("missing_billing")
    assert day_keys(landing, FAULT_DAY) == []
    assert day_keys(landing, FAULT_DAY - timedelta(1)) and day_keys(
        landing, FAULT_DAY + timedelta(1)
    )
    assert summary.billing_days == 7
    assert summary.faults_applied == (f"missing_billing:{FAULT_DAY}",)


def test_billing_no_success() -> None:
    landing, summary = faulted("billing_no_success")
    keys = day_keys(landing, FAULT_DAY)
    assert keys and not any(k.endswith("_SUCCESS") for k in keys)
    assert summary.billing_days == 7


@pytest.mark.parametrize("with_delete", [True, False])
def test_billing_redelivery(with_delete: bool) -> None:
    landing, summary = faulted("billing_redelivery", with_delete=with_delete)
    prefix = f"billing/dt={FAULT_DAY.isoformat()}/"
    ops = [(op, k.rsplit("/", 1)[1], d) for op, k, d in landing.ops if k.startswith(prefix)]
    first_success = [n for _, n, _ in ops].index("_SUCCESS")
    first, second = ops[: first_success + 1], ops[first_success + 1 :]
    assert [n for _, n, _ in first] == [
        "part-00000.csv.gz",
        "part-00001.csv.gz",
        "part-00002.csv.gz",
        "_SUCCESS",
    ]
    n2 = 2 if with_delete else 3
    expect = [("put", f"part-{i:05d}.csv.gz") for i in range(n2)]
    expect += [("delete", "part-00002.csv.gz")] * with_delete + [("put", "_SUCCESS")]
    assert [(op, n) for op, n, _ in second] == expect
    # The redelivery lands after the next day's extract.
    next_day = f"billing/dt={(FAULT_DAY + timedelta(1)).isoformat()}/_SUCCESS"
    order = [k for _, k, _ in landing.ops]
    assert order.index(next_day) < max(i for i, k in enumerate(order) if k.startswith(prefix))

    def rows(parts: list[tuple[str, str, bytes]]) -> list[dict[str, str]]:
        out = []
        for op, name, data in parts:
            if op == "put" and name.endswith(".csv.gz"):
                out += read_csv_part(data)[1]
        return out

    bad, good = rows(first), rows(second)
    bad_ids = [norm_id(r["customer_id"]) for r in bad]
    assert len(bad_ids) - len(set(bad_ids)) == 3
    assert sum(float(r["mrr"]) < 0 for r in bad) == 5
    good_ids = [norm_id(r["customer_id"]) for r in good]
    assert len(good_ids) == len(set(good_ids)) == len(set(bad_ids))
    assert all(float(r["mrr"]) >= 0 for r in good)
    landed = billing_days(landing)[FAULT_DAY.isoformat()]
    assert sorted(norm_id(r["customer_id"]) for r in landed) == sorted(good_ids)
    assert summary.billing_deletes == int(with_delete)


def clickstream_by_arrival_day(landing: Landing) -> Counter:
    return Counter(arrival_of(k).date() for k in landing.objects if k.startswith("clickstream/"))


def test_clickstream_outage() -> None:
    landing, summary = faulted("clickstream_outage")
    per_day = clickstream_by_arrival_day(landing)
    assert per_day[FAULT_DAY] == 0
    assert per_day[FAULT_DAY - timedelta(1)] > 0 and per_day[FAULT_DAY + timedelta(1)] > 0
    assert summary.lost_in_outage > 0
    assert FAULT_DAY.isoformat() not in summary.valid_by_day or (
        summary.valid_by_day[FAULT_DAY.isoformat()] < 0.2 * summary.valid_by_day[START.isoformat()]
    )


def test_volume_drop() -> None:
    landing, summary = faulted("volume_drop")
    records = [r for r in read_clickstream(landing) if r.reason is None and r.customer_id]
    customers = defaultdict(set)
    for r in records:
        customers[r.time.date()].add(r.customer_id)  # type: ignore[union-attr]
    around = [len(customers[FAULT_DAY + timedelta(d)]) for d in (-2, -1, 1, 2)]
    assert min(around) > 0
    assert len(customers[FAULT_DAY]) < 0.7 * np.mean(around)
    assert summary.valid_by_day[FAULT_DAY.isoformat()] < 0.7 * np.mean(
        [summary.valid_by_day[(FAULT_DAY + timedelta(d)).isoformat()] for d in (-2, -1, 1, 2)]
    )


def test_malformed_burst() -> None:
    landing, summary = faulted("malformed_burst")
    records = read_clickstream(landing)
    invalid = [r for r in records if r.reason == "invalid_json"]
    assert summary.bad_lines["invalid_json"] == len(invalid) >= 3000
    hours = Counter((r.arrival.date(), r.arrival.hour) for r in invalid)
    (day, _), count = hours.most_common(1)[0]
    assert day == FAULT_DAY and count >= 3000


@pytest.mark.parametrize(
    ("kind", "present", "absent"),
    [
        ("schema_renamed_column", "monthly_revenue", "mrr"),
        ("schema_missing_column", None, "seats"),
        ("schema_new_column", "loyalty_tier", None),
    ],
)
def test_schema_faults(kind: str, present: str | None, absent: str | None) -> None:
    landing, _ = faulted(kind)
    for key in landing.objects:
        if key.endswith(".csv.gz"):
            header = [h.lower() for h in read_csv_part(landing.objects[key])[0]]
            on_fault_day = key.startswith(f"billing/dt={FAULT_DAY.isoformat()}/")
            if present:
                assert (present in header) == on_fault_day, key
            if absent:
                assert (absent in header) != on_fault_day, key


def test_late_events() -> None:
    landing, summary = faulted("late_events")
    records = read_clickstream(landing)
    late_obj = [
        k
        for k in landing.objects
        if k.startswith("clickstream/") and arrival_of(k).date() == FAULT_DAY + timedelta(2)
    ]
    of_fault_day = Counter(
        r.key
        for r in records
        if r.reason is None
        and r.time.date() == FAULT_DAY  # type: ignore[union-attr]
        and r.arrival.date() == FAULT_DAY + timedelta(2)
    )
    total = len({r.event_id for r in records if r.reason is None and r.time.date() == FAULT_DAY})  # type: ignore[union-attr]
    assert late_obj and max(of_fault_day.values()) == min(300, total)
    assert summary.late_beyond_window >= min(300, total)
    assert accounting(records)["bad"]["late"] == summary.late_beyond_window


def bad_share(records: list[Record], days: set[date]) -> float:
    """Share of bad lines (any reason but ``late``) among the lines arriving on ``days``."""
    arrived = [r for r in records if r.arrival.date() in days]
    return sum(r.reason not in (None, "late") for r in arrived) / len(arrived)


@pytest.mark.parametrize("share", [0.005, 0.02, 0.05])
def test_the_mess_profile_sets_the_share_of_bad_lines_and_a_burst_adds_to_it(
    share: float,
) -> None:
    mess = MessProfile().with_bad_lines(share)
    assert mess.bad_lines == pytest.approx(share)
    config = GeneratorConfig(
        start=START,
        days=8,
        customers=300,
        seed=2,
        mess=mess,
        faults=(Fault("bad_lines_burst", FAULT_DAY),),
    )
    landing, summary = run(config)
    records = read_clickstream(landing)
    normal = {START + timedelta(d) for d in range(8)} - {FAULT_DAY}
    assert bad_share(records, normal) == pytest.approx(share, rel=0.2)
    assert bad_share(records, {FAULT_DAY}) == pytest.approx(share + mess.burst, abs=0.012)
    # Every reason of the mix is planted, and the summary counts what was written (a
    # ``future`` record is well-formed: only its date, which this reader ignores, is bad).
    reasons = Counter(r.reason for r in records if r.reason not in (None, "late"))
    written = Counter({r: n for r, n in summary.bad_lines.items() if r != "future"})
    assert reasons == written and set(written) == set(mess.bad_line_shares) - {"future"}
    assert summary.bad_lines["future"] > 0


def test_the_mess_profile_sets_duplicates_late_and_anonymous_shares() -> None:
    mess = MessProfile(duplicates=0.05, late=0.002, anonymous=0.3, invalid_json=0.0)
    _, s = run(GeneratorConfig(start=START, days=10, customers=200, seed=3, mess=mess))
    assert 0.04 < s.duplicates / s.attributed_events < 0.06
    assert 0.0012 < s.late_beyond_window / s.events < 0.003
    assert 0.27 < s.anonymous_lines / (s.anonymous_lines + s.attributed_events) < 0.33
    assert s.bad_lines["invalid_json"] == 0 and s.bad_lines["unknown_shape"] > 0
    with pytest.raises(ValueError, match="mess profile"):
        MessProfile(duplicates=1.5)
