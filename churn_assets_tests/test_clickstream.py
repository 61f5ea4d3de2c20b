"""Embedded clickstream engine: hand-built inputs with known answers (LANDING.md §2–4)."""

from __future__ import annotations

import gzip
import json
import random
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from churn_assets.core import clickstream as cs
from churn_assets.core.clickstream import (
    ACCOUNTING_KEYS,
    EVENT_COLUMNS,
    QUARANTINE_COLUMNS,
    QUARANTINE_REASONS,
    empty_events,
    empty_quarantine,
    normalise_clickstream,
    read_lines,
)

D = date(2026, 3, 1)
UTC = timezone.utc


def at(day: date, hour: int = 0, minute: int = 0, second: int = 0, ms: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, ms * 1000, tzinfo=UTC)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def epoch_ms(moment: datetime) -> int:
    return int(pd.Timestamp(moment).value // 1_000_000)


def enc(record: object) -> bytes:
    return record if isinstance(record, bytes) else json.dumps(record).encode()


def gz(*records: object) -> bytes:
    """A gzip object of newline-delimited records (dicts/lists are JSON-encoded)."""
    return gzip.compress(b"".join(enc(r) + b"\n" for r in records))


def web(
    event_id: str | None,
    *,
    event: str = "click",
    when: str = "2026-03-01T10:00:00Z",
    customer: object = "C0000001",
    **extra: object,
) -> dict:
    record: dict[str, object] = {"event_id": event_id, "event": event, "ts": when}
    if customer is not ...:
        record["customerId"] = customer
    record.update(extra)
    return record


def app(
    event_id: str | None,
    *,
    event_type: str = "ui.click",
    ms: object = None,
    customer: object = "c0000001 ",
    **extra: object,
) -> dict:
    record: dict[str, object] = {
        "event_id": event_id,
        "event_type": event_type,
        "timestamp_ms": epoch_ms(at(D, 10)) if ms is None else ms,
    }
    if customer is not ...:
        record["user"] = {"customer_id": customer, "anon_id": "a-1"}
    record.update(extra)
    return record


def run(
    *objects: tuple[str, datetime, bytes],
    partition: date = D,
    lateness: timedelta = timedelta(hours=2),
) -> cs.ClickstreamResult:
    result = normalise_clickstream(read_lines(list(objects)), partition, lateness)
    assert_accounting(result)
    return result


def assert_accounting(result: cs.ClickstreamResult) -> None:
    acc = result.accounting
    assert tuple(acc) == ACCOUNTING_KEYS
    assert all(isinstance(v, int) for v in acc.values())
    assert acc["lines_read"] == (
        acc["valid"]
        + acc["duplicate"]
        + acc["anonymous"]
        + acc["other_date"]
        + sum(acc[f"quarantined_{r}"] for r in QUARANTINE_REASONS)
    )
    assert len(result.events) == acc["valid"] + acc["anonymous"]
    assert len(result.quarantine) == sum(acc[f"quarantined_{r}"] for r in QUARANTINE_REASONS)
    for reason in QUARANTINE_REASONS:
        assert (result.quarantine["reason"] == reason).sum() == acc[f"quarantined_{reason}"]
    assert result.events["customer_id"].isna().sum() == acc["anonymous"]
    assert_schema(result)


def assert_schema(result: cs.ClickstreamResult) -> None:
    assert tuple(result.events.columns) == EVENT_COLUMNS
    assert tuple(result.quarantine.columns) == QUARANTINE_COLUMNS
    assert result.events.dtypes.to_dict() == empty_events().dtypes.to_dict()
    assert result.quarantine.dtypes.to_dict() == empty_quarantine().dtypes.to_dict()
    assert str(result.events["event_time"].dtype) == "datetime64[ns, UTC]"
    assert str(result.quarantine["event_time"].dtype) == "datetime64[ns, UTC]"
    assert result.events["line_no"].dtype == "int64"
    assert result.events["is_subscribe"].dtype == bool
    assert all(isinstance(b, bytes) for b in result.quarantine["raw_line"])
    # event times are at millisecond precision
    assert (result.events["event_time"].astype("int64") % 1_000_000 == 0).all()


def reasons(result: cs.ClickstreamResult) -> dict[int, str]:
    return dict(zip(result.quarantine["line_no"], result.quarantine["reason"], strict=True))


# ---------------------------------------------------------------- read_lines


def test_read_lines_splits_newlines_crlf_and_keeps_empty_middle_lines() -> None:
    payload = b'{"a":1}\r\n\n{"b":2}\r\r\nlast\r'
    lines = read_lines([("k", at(D, 3), gzip.compress(payload))])
    assert list(lines["line"]) == [b'{"a":1}', b"", b'{"b":2}\r', b"last"]
    assert list(lines["line_no"]) == [1, 2, 3, 4]
    assert lines.dtypes.to_dict() == cs.empty_lines().dtypes.to_dict()
    assert str(lines["arrival_time"].dtype) == "datetime64[ns, UTC]"
    assert (lines["arrival_time"] == ts("2026-03-01T03:00:00Z")).all()
    # a final newline does not make an extra line; a lone newline is one empty line
    assert list(read_lines([("k", at(D), gzip.compress(b"x\n"))])["line"]) == [b"x"]
    assert list(read_lines([("k", at(D), gzip.compress(b"\n"))])["line"]) == [b""]


def test_read_lines_unreadable_objects_become_one_row_with_the_raw_bytes() -> None:
    good = gzip.compress(b"a\nb\n")
    objects = [
        ("bad", at(D, 1), b"not gzip at all"),
        ("truncated", at(D, 2), good[:-6]),
        ("zero-bytes", at(D, 3), b""),
        ("empty-but-valid", at(D, 4), gzip.compress(b"")),
        ("good", at(D, 5), good),
    ]
    lines = read_lines(objects)
    assert list(zip(lines["object_key"], lines["line_no"], strict=True)) == [
        ("bad", 0),
        ("truncated", 0),
        ("zero-bytes", 0),
        ("good", 1),
        ("good", 2),
    ]
    assert lines["line"].iloc[0] == b"not gzip at all"
    assert lines["line"].iloc[1] == good[:-6]


def test_read_lines_converts_offsets_and_rejects_naive_arrival_times() -> None:
    plus_two = timezone(timedelta(hours=2))
    lines = read_lines([("k", datetime(2026, 3, 1, 3, tzinfo=plus_two), gzip.compress(b"x"))])
    assert lines["arrival_time"].iloc[0] == ts("2026-03-01T01:00:00Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        read_lines([("k", datetime(2026, 3, 1), gzip.compress(b"x"))])
    assert read_lines([]).empty


# ---------------------------------------------------------------- shapes and fields


def test_web_shape_props_string_and_iso_offsets_to_utc() -> None:
    props = json.dumps({"page": "/pricing", "element": "subscribe_button"})
    records = [
        web("w1", event="hover", when="2026-03-01T10:00:00.123Z", props=props),
        web("w2", event="page_view", when="2026-03-01T12:00:00+02:00"),
        web("w3", event="support_chat", when="2026-03-01T12:00:00+0530"),
        web("w4", when="2026-03-01 10:00:00.123456789z"),
        web("w5", when="2026-02-28T23:30:00-05:00"),
        web("w6", when="2026-03-01T10:00:00.9Z", props={"page": "/direct", "element": "x"}),
        web("w7", when="2026-03-01T10:00:00.45-00:00", props="not json"),
    ]
    result = run(("k", at(D, 12), gz(*records)))
    ev = result.events.set_index("event_id")
    assert ev.loc["w1", "event_time"] == ts("2026-03-01T10:00:00.123Z")
    assert ev.loc["w2", "event_time"] == ts("2026-03-01T10:00:00Z")
    assert ev.loc["w3", "event_time"] == ts("2026-03-01T06:30:00Z")
    assert ev.loc["w4", "event_time"] == ts("2026-03-01T10:00:00.123Z")  # truncated, not rounded
    assert ev.loc["w5", "event_time"] == ts("2026-03-01T04:30:00Z")
    assert ev.loc["w6", "event_time"] == ts("2026-03-01T10:00:00.900Z")
    assert ev.loc["w7", "event_time"] == ts("2026-03-01T10:00:00.450Z")
    assert ev.loc["w1", "event_type"] == "hover"
    assert ev.loc["w2", "event_type"] == "page_view"
    assert ev.loc["w3", "event_type"] == "support_contact"
    assert (ev.loc["w1", "page"], ev.loc["w1", "element"]) == ("/pricing", "subscribe_button")
    assert bool(ev.loc["w1", "is_subscribe"])
    assert (ev.loc["w6", "page"], ev.loc["w6", "element"]) == ("/direct", "x")
    assert ev.loc["w7", "page"] is None and ev.loc["w7", "element"] is None
    assert ev.loc["w2", "element"] is None and not ev.loc["w2", "is_subscribe"]
    assert set(ev["source"]) == {"web"}
    assert set(ev["customer_id"]) == {"C0000001"}
    assert result.accounting["valid"] == 7


def test_app_shape_fields_and_integral_timestamps() -> None:
    ms = epoch_ms(at(D, 9, 30, 0, 123))
    context = {"page": {"path": "/pricing"}, "element": {"id": "subscribe-btn"}}
    records = [
        app("m1", ms=ms, context=context, app_version="2.4.0", extra={"nested": [1]}),
        app("m2", event_type="ui.page_view", ms=float(ms), context={"element": None}),
        app("m3", event_type="ui.hover", context={"page": {"path": "/a"}, "element": {"id": None}}),
        app("m4", event_type="support.contact", context="not an object"),
        b'{"event_id":"m5","event_type":"ui.click","timestamp_ms":1.7723592e12,"user":{"customer_id":"x"}}',
    ]
    result = run(("k", at(D, 12), gz(*records)))
    ev = result.events.set_index("event_id")
    assert ev.loc["m1", "event_time"] == ts("2026-03-01T09:30:00.123Z")
    assert ev.loc["m2", "event_time"] == ts("2026-03-01T09:30:00.123Z")
    assert ev.loc["m5", "event_time"] == pd.Timestamp(1772359200000, unit="ms", tz="UTC")
    assert ev.loc["m1", "customer_id"] == "C0000001"
    assert ev.loc["m5", "customer_id"] == "X"
    assert (ev.loc["m1", "page"], ev.loc["m1", "element"]) == ("/pricing", "subscribe-btn")
    assert bool(ev.loc["m1", "is_subscribe"])
    assert ev.loc["m2", "element"] is None and not ev.loc["m2", "is_subscribe"]
    assert (ev.loc["m3", "page"], ev.loc["m3", "element"]) == ("/a", None)
    assert ev.loc["m4", "page"] is None
    assert list(ev.loc[["m1", "m2", "m3", "m4"], "event_type"]) == [
        "click",
        "page_view",
        "hover",
        "support_contact",
    ]
    assert set(ev["source"]) == {"app"}


def test_customer_ids_strip_unicode_whitespace_and_upper_case() -> None:
    ids = [" c0001234\u2003", "\tc0001234\n", "\u3000C0001234", "c0001234\x85", "\xa0c0001234 "]
    records = [web(f"w{i}", customer=cid) for i, cid in enumerate(ids)]
    records.append(app("m1", customer="\u2009C0001234\u202f"))
    body = gz(*records)
    raw_utf8 = json.dumps(web("w-raw", customer="\u00a0c0001234\u3000"), ensure_ascii=False)
    result = run(("k", at(D, 12), body), ("k2", at(D, 13), gz(raw_utf8.encode())))
    assert set(result.events["customer_id"]) == {"C0001234"}
    assert result.accounting["valid"] == 7
    number = run(("k", at(D, 12), gz(web("w-num", customer=1234))))
    assert list(number.events["customer_id"]) == ["1234"]


def test_whitespace_set_is_exactly_pythons_isspace() -> None:
    python_ws = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert set(cs._WHITESPACE) == python_ws


def test_subscribe_element_variants() -> None:
    elements = {
        "w1": "subscribe_button",
        "w2": "subscribe-btn",
        "w3": " Subscribe-Btn-Footer",
        "w4": "SUBSCRIBE",
        "w5": None,
        "w6": "unsubscribe",
        "w7": "subscrib",
        "w8": "\u00a0subscribe\t",
    }
    records = [
        web(eid, props=json.dumps({"element": el} if el is not None else {"element": None}))
        for eid, el in elements.items()
    ]
    result = run(("k", at(D, 12), gz(*records)))
    ev = result.events.set_index("event_id")
    flagged = {eid for eid in elements if ev.loc[eid, "is_subscribe"]}
    assert flagged == {"w1", "w2", "w3", "w4", "w8"}
    assert ev.loc["w3", "element"] == " Subscribe-Btn-Footer"  # kept verbatim


# ---------------------------------------------------------------- dedup and anonymous


def test_duplicates_within_an_object_and_across_objects_first_delivery_wins() -> None:
    early = gz(web("a", when="2026-03-01T10:00:00Z"), web("b"), web("a"))
    late = gz(web("b", when="2026-03-01T11:00:00Z"), web("a"), web("c"))
    tie_key_z = gz(web("d", customer="C9"))
    tie_key_y = gz(web("d", customer="C9"))
    result = run(
        ("obj-late", at(D, 14), late),
        ("obj-early", at(D, 13), early),
        ("obj-z", at(D, 15), tie_key_z),
        ("obj-y", at(D, 15), tie_key_y),
    )
    acc = result.accounting
    assert (acc["valid"], acc["duplicate"]) == (4, 4)
    ev = result.events.set_index("event_id")
    assert (ev.loc["a", "object_key"], ev.loc["a", "line_no"]) == ("obj-early", 1)
    assert ev.loc["a", "event_time"] == ts("2026-03-01T10:00:00Z")
    assert (ev.loc["b", "object_key"], ev.loc["b", "line_no"]) == ("obj-early", 2)
    assert ev.loc["c", "object_key"] == "obj-late"
    assert ev.loc["d", "object_key"] == "obj-y"  # same arrival: smaller object key wins
    assert ev.loc["a", "arrival_time"] == ts("2026-03-01T13:00:00Z")


def test_anonymous_records_are_counted_and_never_deduplicated() -> None:
    records = [
        web("x1", customer=None),
        web("x1", customer=None),  # same event_id, still anonymous twice
        web("x2", customer=...),  # customerId absent
        web("x3", customer=" \u00a0\t"),
        web("x4", customer=""),
        app("x5", customer=None),
        app("x6", customer=...),  # user absent
        app("x7", customer="x", user=["not", "an", "object"]),
        app("x8", customer="x", user=None),
    ]
    result = run(("k", at(D, 12), gz(*records)))
    acc = result.accounting
    assert acc["anonymous"] == 9
    assert (acc["valid"], acc["duplicate"]) == (0, 0)
    assert result.events["customer_id"].isna().all()
    assert list(result.events["event_id"]) == ["x1", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"]


def test_null_event_id_is_never_a_duplicate() -> None:
    result = run(("k", at(D, 12), gz(web(None), web(None), web("z"), web("z"))))
    assert (result.accounting["valid"], result.accounting["duplicate"]) == (3, 1)
    assert result.events["event_id"].isna().sum() == 2


# ---------------------------------------------------------------- quarantine


def test_every_quarantine_reason_with_exact_raw_bytes() -> None:
    lines = [
        b"",  # 1 invalid_json: empty line
        b'{"event_id": "t1", "event": "click", "ts": "2026-03',  # 2 truncated
        b'{"event_id":"t2","event":"click","ts":"2026-03-01T10:00:00Z","customerId":"C1",}',  # 3
        b'{"event_id":"t3","event":"click","ts":"2026-03-01T10:00:00Z","x":NaN}',  # 4
        b'{"event_id":"t4","event":"click","ts":"2026-03-01T10:00:00Z","x":"\xff"}',  # 5 utf-8
        b"\xef\xbb\xbf" + enc(web("t5")),  # 6 BOM
        enc({**web("s1"), "event_type": "ui.click", "timestamp_ms": 1}),  # 7 both shapes
        enc({"event_id": "s2", "event": "click"}),  # 8 neither (no ts)
        b"[1, 2]",  # 9 array
        b'"a string"',  # 10 scalar
        b"42",  # 11 scalar
        b"null",  # 12 scalar
        enc(web("b1", when="2026-03-01T10:00:00")),  # 13 no offset
        enc(app("b2", ms=str(epoch_ms(at(D, 10))))),  # 14 string timestamp_ms
        enc(app("b3", ms=1772359200123.5)),  # 15 fraction
        enc(app("b4", ms=None) | {"timestamp_ms": None}),  # 16 null
        enc(web("b5", when=None)),  # 17 null ts
        enc(web("b6", when="2026-02-30T10:00:00Z")),  # 18 invalid calendar date
        enc(web("b7", when="2026-03-01T24:00:00Z")),  # 19 hour 24
        enc(web("b8", when=1772359200123)),  # 20 ts as a number
        enc(app("b9", ms=True)),  # 21 boolean
        enc(web("b10", when="2026-03-01T10:00Z")),  # 22 no seconds
        enc(web("b11", when="2026-03-01T10:00:00.1234567890Z")),  # 23 10-digit fraction
        enc(web("e1", event="Click")),  # 24 unknown_event_type (case)
        enc(web("e2", event="ui.click")),  # 25 app spelling in web
        enc(app("e3", event_type="ui.scroll")),  # 26
        enc(web("e4", event=None)),  # 27 null event
        enc(web("l1", when="2026-02-27T23:00:00Z")),  # 28 late
        enc(web("f1", when="2026-03-05T10:00:00Z")),  # 29 future
        enc(web("ok")),  # 30 valid
    ]
    payload = gzip.compress(b"\n".join(lines) + b"\n")
    result = run(("k", at(D, 12), payload), ("junk", at(D, 13), b"\x1f\x8bnot really"))
    got = reasons(result)
    expected = {1: "invalid_json", 2: "invalid_json", 3: "invalid_json", 4: "invalid_json"}
    expected |= {5: "invalid_json", 6: "invalid_json"}
    expected |= dict.fromkeys(range(7, 13), "unknown_shape")
    expected |= dict.fromkeys(range(13, 24), "bad_timestamp")
    expected |= dict.fromkeys(range(24, 28), "unknown_event_type")
    expected |= {28: "late", 29: "future", 0: "unreadable_object"}
    assert got == expected
    q = result.quarantine.set_index(["object_key", "line_no"])
    for line_no, raw in enumerate(lines[:29], start=1):
        assert q.loc[("k", line_no), "raw_line"] == raw
    assert q.loc[("junk", 0), "raw_line"] == b"\x1f\x8bnot really"
    assert q.loc[("k", 28), "event_id"] == "l1"
    assert q.loc[("k", 28), "event_time"] == ts("2026-02-27T23:00:00Z")
    assert q.loc[("k", 29), "event_time"] == ts("2026-03-05T10:00:00Z")
    assert q.loc[("k", 24), "event_time"] == ts("2026-03-01T10:00:00Z")
    assert pd.isna(q.loc[("k", 13), "event_time"]) and q.loc[("k", 13), "event_id"] == "b1"
    assert q.loc[("k", 1), "event_id"] is None
    assert q.loc[("k", 7), "event_id"] == "s1"  # unknown_shape, but an object with an event_id
    assert q.loc[("k", 9), "event_id"] is None
    acc = result.accounting
    assert (acc["valid"], acc["objects_read"], acc["objects_unreadable"]) == (1, 2, 1)
    assert acc["quarantined_unreadable_object"] == 1


def test_json_strictness_ignores_lookalikes_inside_strings() -> None:
    tricky = web(
        "id,}NaN",
        customer="Infinity, ]",
        props=json.dumps({"page": "/a,}", "element": 'subscribe \\" nan'}),
        note='escaped \\" quote, ] and inf',
    )
    spaced = b' \t{"event_id":"w","event":"click","ts":"2026-03-01T10:00:00Z"} \t'
    result = run(("k", at(D, 12), gz(tricky, spaced)))
    assert result.accounting["valid"] == 1
    assert result.accounting["anonymous"] == 1
    assert result.events.set_index("event_id").loc["id,}NaN", "customer_id"] == "INFINITY, ]"
    # a trailing comma inside a props string makes props unusable, not the line
    bad_props = run(("k", at(D, 12), gz(web("p", props='{"element": "subscribe",}'))))
    assert bad_props.events["element"].tolist() == [None]


# ---------------------------------------------------------------- time and partitions


def test_object_read_by_two_partitions_is_accounted_in_each_and_quarantined_once() -> None:
    next_day = D + timedelta(days=1)
    records = [
        web("d-event", when="2026-03-01T23:59:00Z"),  # 1: D's, arrived in D's lateness window
        web("d1-event", when="2026-03-02T00:30:00Z"),  # 2: D+1's
        b"{broken",  # 3: bad: quarantined by D+1 (arrival date) only
        web("old", when="2026-02-28T12:00:00Z"),  # 4: late, by D+1 only
        web("ahead", when="2026-03-04T12:00:00Z"),  # 5: future, by D+1 only
        web("anon-d", when="2026-03-01T22:00:00Z", customer=None),  # 6: D's anonymous
    ]
    obj = ("k-0100", at(next_day, 1), gz(*records))
    in_d, in_d1 = run(obj, partition=D), run(obj, partition=next_day)
    for result in (in_d, in_d1):
        assert result.accounting["lines_read"] == 6
    assert in_d.accounting["valid"] == 1 and in_d.accounting["anonymous"] == 1
    assert in_d.accounting["other_date"] == 4
    assert in_d.quarantine.empty
    assert in_d1.accounting["valid"] == 1 and in_d1.accounting["other_date"] == 2
    assert reasons(in_d1) == {3: "invalid_json", 4: "late", 5: "future"}
    assert list(in_d.events["event_id"]) == ["d-event", "anon-d"]
    assert list(in_d1.events["event_id"]) == ["d1-event"]
    quarantined = [
        set(zip(r.quarantine.object_key, r.quarantine.line_no, strict=True)) for r in (in_d, in_d1)
    ]
    assert not quarantined[0] & quarantined[1]


def test_lateness_window_end_is_excluded_and_configurable() -> None:
    record = gz(web("e", when="2026-03-01T20:00:00Z"))
    just_inside = ("in", at(D + timedelta(days=1), 1, 59, 59, 999), record)
    at_end = ("end", at(D + timedelta(days=1), 2), record)
    assert run(just_inside).accounting["valid"] == 1
    # arrived at the end of D's window: D does not own it (other_date); D+1 quarantines it late
    assert run(at_end).accounting["other_date"] == 1
    late = run(at_end, partition=D + timedelta(days=1))
    assert reasons(late) == {1: "late"}
    assert run(at_end, lateness=timedelta(hours=3)).accounting["valid"] == 1
    with pytest.raises(ValueError):
        run(at_end, lateness=timedelta(hours=-1))


def test_categories_come_from_arrival_time_not_from_what_the_caller_passed() -> None:
    records = gz(web("e", when="2026-03-01T10:00:00Z"), b"bad")
    result = run(("far", at(D + timedelta(days=3), 5), records))
    assert result.accounting["other_date"] == 2
    assert result.events.empty and result.quarantine.empty


def test_late_duplicate_copy_is_late_not_duplicate() -> None:
    record = web("same", when="2026-03-01T10:00:00Z")
    first = ("first", at(D, 12), gz(record))
    again = ("again", at(D + timedelta(days=2), 1), gz(record))
    assert run(first, again).accounting["valid"] == 1
    assert reasons(run(first, again, partition=D + timedelta(days=2))) == {1: "late"}


def test_events_sorted_and_empty_input() -> None:
    records = [
        web("b", customer="C2", when="2026-03-01T09:00:00Z"),
        web("a", customer="C2", when="2026-03-01T09:00:00Z"),
        web("z", customer="C1", when="2026-03-01T11:00:00Z"),
        web("n", customer=None, when="2026-03-01T08:00:00Z"),
        web("y", customer="C1", when="2026-03-01T10:00:00Z"),
    ]
    result = run(("k", at(D, 12), gz(*records)))
    assert list(result.events["event_id"]) == ["y", "z", "a", "b", "n"]
    empty = normalise_clickstream(read_lines([]), D)
    assert empty.accounting == dict.fromkeys(ACCOUNTING_KEYS, 0)
    assert_schema(empty)


def test_two_hundred_thousand_lines_normalise_and_add_up() -> None:
    rng = random.Random(7)
    objects = []
    n_objects, per_object = 20, 10_000
    for o in range(n_objects):
        rows = []
        for i in range(per_object):
            minute = rng.randrange(24 * 60)
            eid = f"e{rng.randrange(150_000)}"
            if i % 2:
                rows.append(
                    f'{{"event_id":"{eid}","event":"hover","ts":"2026-03-01T'
                    f'{minute // 60:02d}:{minute % 60:02d}:00.5Z","customerId":"c{i % 997}",'
                    '"props":"{\\"element\\": \\"subscribe_button\\"}"}'
                )
            else:
                ms = epoch_ms(at(D)) + minute * 60_000
                rows.append(
                    f'{{"event_id":"{eid}","event_type":"ui.click","timestamp_ms":{ms},'
                    f'"user":{{"customer_id":"c{i % 991} "}}}}'
                )
        payload = gzip.compress(("\n".join(rows) + "\n").encode(), compresslevel=1)
        objects.append((f"k{o:02d}", at(D, o), payload))
    result = run(*objects)
    acc = result.accounting
    assert acc["lines_read"] == n_objects * per_object
    assert acc["valid"] + acc["duplicate"] == acc["lines_read"]
    assert acc["valid"] == result.events["event_id"].nunique() == len(result.events)


@pytest.mark.parametrize(
    "extension",
    [
        b',"x":[1,2,]',
        b',"x":{"y":1,}',
        b',"x":1 , ',
        b',"x":-Infinity',
        b',"x":inf',
        b',"x":-inf',
        b',"x":INF',
        b',"x":Nan',
        b',"x":nan',
        b',"x":1e5,"y":true,"z":false,"w":null,"v":',  # dangling: plain syntax error
    ],
)
def test_json_extensions_that_duckdb_tolerates_are_invalid_json(extension: bytes) -> None:
    base = b'{"event_id":"x","event":"click","ts":"2026-03-01T10:00:00Z","customerId":"C1"'
    result = run(("k", at(D, 12), gz(base + extension + b"}", base + b',"x":1e5,"y":null}')))
    assert reasons(result) == {1: "invalid_json"}
    assert result.accounting["valid"] == 1
