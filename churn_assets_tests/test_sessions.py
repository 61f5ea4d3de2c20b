"""Sessionisation and per-customer activity: tiny hand-built cases with known answers."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn_assets.core import sessions as sessions_mod
from churn_assets.core.clickstream import EVENT_COLUMNS, empty_events
from churn_assets.core.sessions import (
    ACTIVITY_COLUMNS,
    SESSION_COLUMNS,
    customer_activity,
    empty_activity,
    empty_sessions,
    sessionise,
)

D = date(2026, 3, 1)


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def events(*rows: tuple) -> pd.DataFrame:
    """rows: (customer_id, event_time str, event_type[, is_subscribe[, event_id]])."""
    records = []
    for i, row in enumerate(rows):
        customer, when, event_type = row[:3]
        subscribe = row[3] if len(row) > 3 else False
        event_id = row[4] if len(row) > 4 else f"e{i}"
        records.append(
            {
                "event_id": event_id,
                "customer_id": customer,
                "event_type": event_type,
                "event_time": t(when),
                "page": None,
                "element": "subscribe_button" if subscribe else None,
                "is_subscribe": subscribe,
                "source": "web",
                "object_key": "k",
                "line_no": i + 1,
                "arrival_time": t("2026-03-02T00:00:00"),
            }
        )
    frame = pd.DataFrame(records, columns=list(EVENT_COLUMNS))
    frame["event_time"] = frame["event_time"].astype("datetime64[ns, UTC]")
    frame["arrival_time"] = frame["arrival_time"].astype("datetime64[ns, UTC]")
    return frame


def assert_session_schema(sessions: pd.DataFrame) -> None:
    assert tuple(sessions.columns) == SESSION_COLUMNS
    assert sessions.dtypes.to_dict() == empty_sessions().dtypes.to_dict()


def test_gap_of_exactly_thirty_minutes_stays_and_one_more_millisecond_splits() -> None:
    ev = events(
        ("C1", "2026-03-01T10:00:00", "page_view"),
        ("C1", "2026-03-01T10:30:00", "click"),  # exactly 30 min: same session
        ("C1", "2026-03-01T11:00:00.001", "hover"),  # 30 min + 1 ms: new session
    )
    sessions = sessionise(ev)
    assert_session_schema(sessions)
    assert list(sessions["n_events"]) == [2, 1]
    assert list(sessions["session_start"]) == [t("2026-03-01T10:00"), t("2026-03-01T11:00:00.001")]
    assert list(sessions["session_end"]) == [t("2026-03-01T10:30"), t("2026-03-01T11:00:00.001")]
    assert list(sessions["duration_s"]) == [1800.0, 0.0]
    start_ms = t("2026-03-01T10:00").value // 1_000_000
    assert sessions["session_id"].iloc[0] == f"C1-{start_ms}"
    assert sessions["session_id"].iloc[1] == f"C1-{start_ms + 3_600_001}"
    # a custom gap changes the cut
    assert len(sessionise(ev, gap=timedelta(minutes=29))) == 3


def test_midnight_splits_sessions_across_partitions_and_within_one_table() -> None:
    day1 = events(("C1", "2026-03-01T23:50:00", "page_view"))
    day2 = events(("C1", "2026-03-02T00:10:00", "click"))
    per_partition = pd.concat([sessionise(day1), sessionise(day2)], ignore_index=True)
    together = sessionise(pd.concat([day1, day2], ignore_index=True))
    for sessions in (per_partition, together):
        assert len(sessions) == 2
        assert list(sessions["session_start"]) == [t("2026-03-01T23:50"), t("2026-03-02T00:10")]
    pd.testing.assert_frame_equal(per_partition, together)


def test_counts_per_session_customers_sorted_and_anonymous_excluded() -> None:
    ev = events(
        ("C2", "2026-03-01T09:00:00", "page_view"),
        ("C1", "2026-03-01T08:00:00", "hover", True),
        ("C1", "2026-03-01T08:01:00", "click", True),
        ("C1", "2026-03-01T08:02:00", "hover", False),
        ("C1", "2026-03-01T08:03:00", "support_contact"),
        ("C1", "2026-03-01T08:04:00", "page_view", True),  # subscribe page_view: not counted
        (None, "2026-03-01T08:05:00", "click", True),
        ("C2", "2026-03-01T09:10:00", "click", False),
    )
    sessions = sessionise(ev)
    assert_session_schema(sessions)
    assert list(sessions["customer_id"]) == ["C1", "C2"]
    c1, c2 = sessions.iloc[0], sessions.iloc[1]
    assert (c1.n_events, c1.n_page_views, c1.n_hovers, c1.n_clicks) == (5, 1, 2, 1)
    assert (c1.n_support_contacts, c1.n_subscribe_hovers, c1.n_subscribe_clicks) == (1, 1, 1)
    assert c1.duration_s == 240.0
    assert (c2.n_events, c2.n_page_views, c2.n_clicks, c2.n_subscribe_clicks) == (2, 1, 1, 0)


def test_ties_in_event_time_and_unsorted_input() -> None:
    ev = events(
        ("C1", "2026-03-01T12:00:00", "click", False, "b"),
        ("C1", "2026-03-01T10:00:00", "click", False, "z"),
        ("C1", "2026-03-01T12:00:00", "hover", False, "a"),
    )
    sessions = sessionise(ev.sample(frac=1.0, random_state=3))
    assert list(sessions["n_events"]) == [1, 2]
    assert list(sessions["session_start"]) == [t("2026-03-01T10:00"), t("2026-03-01T12:00")]


def test_empty_inputs_give_typed_empty_frames() -> None:
    assert_session_schema(sessionise(empty_events()))
    assert sessionise(events((None, "2026-03-01T10:00:00", "click"))).empty
    activity = customer_activity(empty_sessions(), D, 28)
    assert tuple(activity.columns) == ACTIVITY_COLUMNS
    assert activity.dtypes.to_dict() == empty_activity().dtypes.to_dict()
    with pytest.raises(ValueError):
        customer_activity(empty_sessions(), D, 0)


def sessions_table(*rows: tuple) -> pd.DataFrame:
    """rows: (customer_id, start str, duration minutes, n_page_views, n_hovers, n_clicks,
    n_support_contacts, n_subscribe_hovers, n_subscribe_clicks)."""
    records = []
    for customer, start, minutes, pv, hv, cl, sc, sh, scl in rows:
        begin = t(start)
        records.append(
            {
                "customer_id": customer,
                "session_id": f"{customer}-{begin.value // 1_000_000}",
                "session_start": begin,
                "session_end": begin + pd.Timedelta(minutes=minutes),
                "duration_s": minutes * 60.0,
                "n_events": pv + hv + cl + sc,
                "n_page_views": pv,
                "n_hovers": hv,
                "n_clicks": cl,
                "n_support_contacts": sc,
                "n_subscribe_hovers": sh,
                "n_subscribe_clicks": scl,
            }
        )
    frame = pd.DataFrame(records, columns=list(SESSION_COLUMNS))
    return frame.astype(empty_sessions().dtypes.to_dict())


def test_customer_activity_numbers_on_a_tiny_case() -> None:
    as_of = date(2026, 3, 14)  # window_days=10 -> days 03-05 .. 03-14; recent: 03-08 .. 03-14
    sessions = sessions_table(
        ("A", "2026-03-04T10:00", 5, 9, 9, 9, 9, 9, 9),  # outside the window (too old)
        ("A", "2026-03-05T10:00", 6, 1, 0, 0, 0, 0, 0),  # earlier part
        ("A", "2026-03-06T10:00", 3, 1, 1, 0, 0, 1, 0),  # earlier part
        ("A", "2026-03-10T23:00", 12, 2, 2, 1, 1, 1, 1),  # recent
        ("A", "2026-03-10T08:00", 9, 0, 0, 1, 0, 0, 1),  # recent, same day
        ("A", "2026-03-15T08:00", 9, 5, 5, 5, 5, 5, 5),  # after as_of: ignored
        ("B", "2026-03-06T00:00", 30, 1, 0, 0, 0, 0, 0),  # only earlier -> trend -1
        ("C", "2026-03-14T23:59", 1, 0, 1, 0, 0, 1, 0),  # only recent -> trend +1 cap
    )
    activity = customer_activity(sessions, as_of, window_days=10)
    assert tuple(activity.columns) == ACTIVITY_COLUMNS
    assert activity.dtypes.to_dict() == empty_activity().dtypes.to_dict()
    assert list(activity["customer_id"]) == ["A", "B", "C"]
    a, b, c = (activity.iloc[i] for i in range(3))
    assert (a.sessions_7d, a.sessions_28d, a.active_days_28d) == (2, 4, 3)
    assert (a.page_views_28d, a.hovers_28d, a.clicks_28d) == (4, 3, 2)
    assert (a.subscribe_hovers_28d, a.subscribe_clicks_28d, a.support_contacts_28d) == (2, 2, 1)
    assert a.minutes_28d == pytest.approx(30.0)
    assert a.days_since_last_session == 4
    # recent 2 sessions / 7 days vs earlier 2 sessions / 3 days
    assert a.visit_trend == pytest.approx((2 / 7) / (2 / 3) - 1)
    assert (b.sessions_7d, b.sessions_28d, b.days_since_last_session) == (0, 1, 8)
    assert b.visit_trend == -1.0
    assert (c.sessions_7d, c.days_since_last_session, c.visit_trend) == (1, 0, 1.0)
    # the window start is exclusive: as_of - window_days is out, the day after is in
    edge = customer_activity(
        sessions_table(("A", "2026-03-04T00:00", 1, 1, 0, 0, 0, 0, 0)), as_of, window_days=11
    )
    assert list(edge["sessions_28d"]) == [1]
    assert customer_activity(sessions, as_of, window_days=10).equals(activity)


def test_short_window_has_no_earlier_part() -> None:
    sessions = sessions_table(("A", "2026-03-13T10:00", 2, 1, 0, 0, 0, 0, 0))
    activity = customer_activity(sessions, date(2026, 3, 14), window_days=3)
    assert (activity.sessions_7d.iloc[0], activity.sessions_28d.iloc[0]) == (1, 1)
    assert activity.visit_trend.iloc[0] == 1.0
    assert np.isfinite(activity["visit_trend"]).all()


def test_presorted_events_skip_the_sort_and_give_the_same_sessions() -> None:
    rng = np.random.default_rng(5)
    rows = [
        (
            f"C{rng.integers(0, 40)}",
            str(t("2026-03-01T00:00") + pd.Timedelta(minutes=int(rng.integers(0, 1440)))),
            str(rng.choice(["click", "hover", "page_view", "support_contact"])),
            bool(rng.random() < 0.3),
            f"e{rng.integers(0, 50)}-{i}",
        )
        for i in range(400)
    ]
    shuffled = events(*rows)
    ordered = shuffled.sort_values(["customer_id", "event_time", "event_id"], ignore_index=True)
    assert sessions_mod._in_session_order(
        ordered["customer_id"].to_numpy(object),
        ordered["event_time"].astype("int64").to_numpy(),
        ordered["event_id"].to_numpy(object),
    )
    assert not sessions_mod._in_session_order(
        shuffled["customer_id"].to_numpy(object),
        shuffled["event_time"].astype("int64").to_numpy(),
        shuffled["event_id"].to_numpy(object),
    )
    pd.testing.assert_frame_equal(sessionise(ordered), sessionise(shuffled), check_exact=True)
    # A null event_id (never sorted by comparison) takes the sorting path, same result.
    with_null = ordered.copy()
    with_null.loc[0, "event_id"] = None
    pd.testing.assert_frame_equal(
        sessionise(with_null), sessionise(with_null.iloc[::-1]), check_exact=True
    )
