"""Spark engine parity: the same landing data gives the embedded engine's exact tables.

Every comparison is row by row with equal dtypes (``assert_frame_equal``, exact), in the
engines' own row order and again after sorting. The hand-built edge cases of
``test_clickstream.py`` and ``test_sessions.py`` run unchanged against Spark, twice: first
their engine calls are recorded (answered by the embedded engine), then all recorded calls
run on Spark in one batch, then each case runs again with its calls answered by the Spark
results (each required equal to the embedded one), so its own assertions judge Spark.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource
from pyspark.sql import SparkSession

import churn_assets_tests.test_clickstream as clickstream_cases
import churn_assets_tests.test_sessions as session_cases
from churn_assets.assets.training import concat_days
from churn_assets.core import clickstream as core_clickstream
from churn_assets.core import sessions as core_sessions
from churn_assets.core.bounded_read import ObjectLimits
from churn_assets.core.clickstream import (
    ACCOUNTING_KEYS,
    QUARANTINE_REASONS,
    ClickstreamResult,
    normalise_clickstream,
    read_lines,
)
from churn_assets.core.daily_model import GatePolicy, TrainingConfig
from churn_assets.core.features import build_features
from churn_assets.core.generator import Fault
from churn_assets.core.landing_layout import clickstream_window
from churn_assets.core.tuning import TuningConfig
from churn_assets.definitions import build_definitions
from churn_assets.engines.embedded import EmbeddedEngine
from churn_assets.engines.spark import (
    SparkEngine,
    SparkSessionResource,
    customer_activity_many,
    normalise_many,
    normalise_objects,
    sessionise_many,
    spark_resource,
)
from churn_assets.environments import storage_resources
from churn_assets.resources.landing import ClickstreamObject, LandingZone
from churn_assets.resources.warehouse import ParquetWarehouse, from_parquet_bytes, to_parquet_bytes
from churn_assets.runner import run_days
from churn_assets.settings import PipelineSettings
from churn_assets_tests.spark_support import LOCAL_MASTER, local_spark, stop_spark
from churn_assets_tests.support import HISTORY_START, GeneratedHistory, generate_history

LATENESS = timedelta(hours=2)
GAP = timedelta(minutes=30)
UTC = timezone.utc
D = date(2026, 3, 1)


@pytest.fixture(scope="module", autouse=True)
def _stop_spark_after_module() -> Iterator[None]:
    yield
    stop_spark()  # leave the process without a local session (the cluster tests need that)


@pytest.fixture
def spark() -> SparkSession:
    """The shared local[2] session."""
    return local_spark()


def assert_same_frame(expected: pd.DataFrame, got: pd.DataFrame, keys: Sequence[str]) -> None:
    pd.testing.assert_frame_equal(expected, got, check_dtype=True, check_exact=True)
    pd.testing.assert_frame_equal(
        expected.sort_values(list(keys)).reset_index(drop=True),
        got.sort_values(list(keys)).reset_index(drop=True),
        check_dtype=True,
        check_exact=True,
    )


def assert_same_result(expected: ClickstreamResult, got: ClickstreamResult) -> None:
    """Identical accounting, events and quarantine (reasons and raw bytes included)."""
    assert got.accounting == expected.accounting
    assert list(got.accounting) == list(ACCOUNTING_KEYS)
    assert_same_frame(expected.events, got.events, ["object_key", "line_no"])
    assert_same_frame(expected.quarantine, got.quarantine, ["object_key", "line_no"])


# ---------------------------------------------------------------- record, batch, replay


@dataclass
class Replay:
    """Engine calls of named cases: recorded with the embedded engine's answers, then
    answered with the Spark results of the same calls (which must equal those answers)."""

    calls: dict[str, list[tuple]] = field(default_factory=dict)
    expected: dict[str, list[Any]] = field(default_factory=dict)
    spark: dict[str, list[Any]] = field(default_factory=dict)
    case: str = ""
    cursor: int = 0
    replaying: bool = False

    def begin(self, case: str, replaying: bool) -> None:
        self.case, self.cursor, self.replaying = case, 0, replaying
        if not replaying:
            self.calls[case], self.expected[case] = [], []

    def answer(self, args: tuple, embedded: Callable[[], Any], same: Callable) -> Any:
        if not self.replaying:
            self.calls[self.case].append(args)
            self.expected[self.case].append(embedded())
            return self.expected[self.case][-1]
        i, self.cursor = self.cursor, self.cursor + 1
        assert _same_args(self.calls[self.case][i], args), "the case is not deterministic"
        same(self.expected[self.case][i], self.spark[self.case][i])
        return self.spark[self.case][i]

    def flat(self) -> list[tuple[str, int, tuple]]:
        return [
            (case, i, args) for case, calls in self.calls.items() for i, args in enumerate(calls)
        ]

    def store(self, results: Sequence[Any]) -> None:
        self.spark = {case: [] for case in self.calls}
        for (case, _, _), result in zip(self.flat(), results, strict=True):
            self.spark[case].append(result)


def _comparable(value: Any) -> Any:
    """``value`` with the gzip header timestamps of objects zeroed (gzip.compress stamps
    the current time: only those four bytes may differ from one play to the next)."""
    if isinstance(value, bytes) and value[:2] == b"\x1f\x8b" and len(value) >= 8:
        return value[:4] + b"\0\0\0\0" + value[8:]
    if isinstance(value, tuple):
        return tuple(_comparable(v) for v in value)
    return value


def _same_args(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(_comparable(a), _comparable(b), strict=True):
        if isinstance(x, pd.DataFrame):
            if not (isinstance(y, pd.DataFrame) and x.equals(y)):
                return False
        elif x != y:
            return False
    return True


@dataclass(frozen=True)
class _Objects:
    """What the redirected ``read_lines`` returns: the objects themselves."""

    objects: tuple[tuple[str, datetime, bytes], ...]


class ClickstreamReplay(Replay):
    def normalise(
        self,
        objects: Sequence[tuple[str, datetime, bytes]],
        partition: date,
        lateness: timedelta = LATENESS,
    ) -> ClickstreamResult:
        if lateness < timedelta(0):  # the embedded engine's own error, before any I/O
            raise ValueError("lateness must not be negative")
        objects = tuple(objects)
        return self.answer(
            (objects, partition, lateness),
            lambda: normalise_clickstream(read_lines(list(objects)), partition, lateness),
            assert_same_result,
        )

    def normalise_clickstream(
        self, lines: _Objects, partition: date, lateness: timedelta = LATENESS
    ) -> ClickstreamResult:
        return self.normalise(lines.objects, partition, lateness)

    def run_on_spark(self, spark: SparkSession, root: Path, alone: Sequence[str] = ()) -> None:
        """Every recorded call on Spark, in one batch (the cases in ``alone`` in a second
        one). Objects are written to ``<n>.gz``
        files: Hadoop picks the codec from the name."""
        calls = []
        for case, i, (objects, partition, lateness) in self.flat():
            folder = root / case / str(i)
            folder.mkdir(parents=True)
            located = []
            for n, (key, arrival, data) in enumerate(objects):
                (folder / f"{n}.gz").write_bytes(data)
                located.append((str(folder / f"{n}.gz"), key, arrival, len(data)))
            calls.append((case in alone, (located, partition, lateness)))
        results: list[ClickstreamResult | None] = [None] * len(calls)
        for separate in (False, True):
            chosen = [i for i, (flag, _) in enumerate(calls) if flag == separate]
            done = normalise_many(spark, [calls[i][1] for i in chosen])
            for i, result in zip(chosen, done, strict=True):
                results[i] = result
        self.store(results)


class SessionsReplay(Replay):
    def sessionise(self, events: pd.DataFrame, gap: timedelta = GAP) -> pd.DataFrame:
        if gap < timedelta(0):
            raise ValueError("gap must not be negative")
        return self.answer(
            ("sessionise", events.copy(), gap),
            lambda: core_sessions.sessionise(events, gap),
            lambda e, g: assert_same_frame(e, g, ["customer_id", "session_start"]),
        )

    def customer_activity(
        self, sessions: pd.DataFrame, as_of: date, window_days: int = 28
    ) -> pd.DataFrame:
        if window_days < 1:
            raise ValueError("window_days must be at least 1")
        return self.answer(
            ("activity", sessions.copy(), as_of, window_days),
            lambda: core_sessions.customer_activity(sessions, as_of, window_days),
            lambda e, g: assert_same_frame(e, g, ["customer_id"]),
        )

    def run_on_spark(self, spark: SparkSession) -> None:
        flat = self.flat()
        sessionise = [(a[1], a[2]) for _, _, a in flat if a[0] == "sessionise"]
        activity = [(a[1], a[2], a[3]) for _, _, a in flat if a[0] == "activity"]
        done = iter(sessionise_many(spark, sessionise))
        activities = iter(customer_activity_many(spark, activity))
        self.store([next(done) if a[0] == "sessionise" else next(activities) for _, _, a in flat])


@contextmanager
def redirected(module: Any, **functions: Callable) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, function in functions.items():
            patch.setattr(module, name, function)
        yield


# ---------------------------------------------------------------- the clickstream cases

CLICKSTREAM_CASES = [
    "test_web_shape_props_string_and_iso_offsets_to_utc",
    "test_app_shape_fields_and_integral_timestamps",
    "test_customer_ids_strip_unicode_whitespace_and_upper_case",
    "test_subscribe_element_variants",
    "test_duplicates_within_an_object_and_across_objects_first_delivery_wins",
    "test_anonymous_records_are_counted_and_never_deduplicated",
    "test_null_event_id_is_never_a_duplicate",
    "test_every_quarantine_reason_with_exact_raw_bytes",
    "test_json_strictness_ignores_lookalikes_inside_strings",
    "test_object_read_by_two_partitions_is_accounted_in_each_and_quarantined_once",
    "test_lateness_window_end_is_excluded_and_configurable",
    "test_categories_come_from_arrival_time_not_from_what_the_caller_passed",
    "test_late_duplicate_copy_is_late_not_duplicate",
    "test_events_sorted_and_empty_input",
    "test_two_hundred_thousand_lines_normalise_and_add_up",
]
_EXTENSION_TEST = clickstream_cases.test_json_extensions_that_duckdb_tolerates_are_invalid_json
EXTENSIONS: list[bytes] = next(
    m.args[1] for m in _EXTENSION_TEST.pytestmark if m.name == "parametrize"
)


def at(hour: int, day: date = D) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def case_line_numbers(normalise: Callable[..., ClickstreamResult]) -> None:
    """Every line is invalid JSON, so the quarantine shows each line's number and exact
    bytes: 1-based, empty middle lines counted, one \\r per line stripped, no extra line
    after a final newline, lone newline = one empty line, gzip members concatenated."""
    objects = [
        ("crlf", at(3), gzip.compress(b"a\r\n\nb\r\r\nc\r\n\xff\xfe\n  \nlast\r", mtime=0)),
        ("final-newline", at(4), gzip.compress(b"x\n", mtime=0)),
        ("lone-newline", at(5), gzip.compress(b"\n", mtime=0)),
        ("no-final-newline", at(6), gzip.compress(b"p\nq", mtime=0)),
        ("empty-but-valid", at(7), gzip.compress(b"", mtime=0)),
        (
            "two-members",
            at(8),
            gzip.compress(b"m1\nm2\n", mtime=0) + gzip.compress(b"m3\n", mtime=0),
        ),
        ("big", at(9), gzip.compress(b"".join(b"%d\n" % i for i in range(5000)))),
    ]
    result = normalise(objects, D)
    q = result.quarantine
    crlf = q[q.object_key == "crlf"]
    assert list(crlf.line_no) == [1, 2, 3, 4, 5, 6, 7]
    assert list(crlf.raw_line) == [b"a", b"", b"b\r", b"c", b"\xff\xfe", b"  ", b"last"]
    assert list(q[q.object_key == "final-newline"].raw_line) == [b"x"]
    assert list(q[q.object_key == "lone-newline"].raw_line) == [b""]
    assert list(q[q.object_key == "no-final-newline"].raw_line) == [b"p", b"q"]
    assert list(q[q.object_key == "two-members"].line_no) == [1, 2, 3]
    assert list(q[q.object_key == "big"].line_no) == list(range(1, 5001))
    assert result.accounting["objects_read"] == 6  # the empty object has no lines
    assert result.accounting["lines_read"] == 7 + 1 + 1 + 2 + 3 + 5000


def case_unreadable_objects(normalise: Callable[..., ClickstreamResult]) -> None:
    record = b'{"event_id":"a","event":"click","ts":"2026-03-01T10:00:00Z","customerId":"C1"}'
    good = gzip.compress((record + b"\n") * 3, mtime=0)
    bad_crc = good[:-8] + bytes([good[-8] ^ 1]) + good[-7:]
    objects = [
        ("not-gzip", at(1), b"not gzip at all"),
        ("truncated", at(2), good[:-6]),
        ("zero-bytes", at(3), b""),
        ("bad-crc", at(4), bad_crc),
        ("bad-length", at(5), good[:-4] + struct.pack("<I", 5)),
        ("trailing-garbage", at(6), good + b"garbage"),
        ("good", at(7), good),
    ]
    result = normalise(objects, D)
    assert result.accounting["objects_unreadable"] == 6
    assert result.accounting["quarantined_unreadable_object"] == 6
    q = result.quarantine.set_index("object_key")
    assert q.loc["truncated", "raw_line"] == good[:-6]
    assert q.loc["zero-bytes", "raw_line"] == b""
    assert (q.loc["not-gzip", "line_no"], q.loc["not-gzip", "reason"]) == (0, "unreadable_object")
    assert result.accounting["duplicate"] == 2  # the good object's copies of "a"
    # read by the next day, the same objects are other_date, never quarantined twice
    next_day = normalise(objects, D + timedelta(days=1))
    assert next_day.quarantine.empty and next_day.accounting["other_date"] == 6 + 3


def _web(event_id: object, **extra: object) -> dict:
    return {"event_id": event_id, "event": "click", "ts": "2026-03-01T10:00:00Z", **extra}


# Lines where a lenient JSON reader, a careless timestamp rule or a Java regex would differ
# from the embedded engine; each is compared with it.
STRICTNESS_LINES: list[bytes] = [
    json.dumps(_web("ok", customerId="C1")).encode(),
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"} x',  # trailing content
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"}}',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"}]',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"},{"a":1}',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"}, "k": 1',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"} //c',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"/*c*/}',
    b"{'event_id':'t','event':'click','ts':'2026-03-01T10:00:00Z'}",  # single quotes
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","n":01}',  # leading zero
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","n":+1}',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","n":1.}',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","n":.5}',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"a\tb"}',  # raw tab
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"\\x41"}',  # bad escape
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"\\ud800"}',  # lone
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"\\udc00"}',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"\\ud800\\u0041"}',
    b'{"event_id":"p","event":"click","ts":"2026-03-01T10:00:00Z","s":"\\ud83d\\ude00"}',  # pair
    b'{"event_id":"q","event":"click","ts":"2026-03-01T10:00:00Z","s":"\\\\ud800"}',  # escaped \
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"\xed\xa0\x80"}',
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"\xc0\x80"}',  # overlong
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z","s":"\xf4\x90\x80\x80"}',
    b'{"event_id":"u","event":"click","ts":"2026-03-01T10:00:00Z","s":"\xef\xbf\xbf\x7f"}',
    b'\x0c{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"}',  # form feed
    b'\xc2\xa0{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"}',  # nbsp
    b'{"event_id":"t","event":"click","ts":"2026-03-01T10:00:00Z"}\x00',
    b"[]",
    b"{}",
    b"true",
    b'"\\u0000"',
    b'{"event_id":"v","event":"click","ts":"2026-03-01T10:00:00Z\\n"}',  # \n after the offset
    b'{"event_id":"w","event":"click","ts":"2026-03-01T10:00:00\\u005a"}',  # escaped Z
    b'{"event_id":"x","event":"click","ts":"2024-02-29T23:59:59.999+23:59"}',  # leap day
    b'{"event_id":"x","event":"click","ts":"2026-02-29T10:00:00Z"}',
    b'{"event_id":"x","event":"click","ts":"2026-04-31T10:00:00Z"}',
    b'{"event_id":"x","event":"click","ts":"2026-03-01T10:00:60Z"}',
    b'{"event_id":"x","event":"click","ts":"2026-03-01T10:00:00+24:00"}',
    b'{"event_id":"x","event":"click","ts":"2026-03-01T10:00:00+05:60"}',
    b'{"event_id":"x","event":"click","ts":"0000-01-01T00:00:00Z"}',
    b'{"event_id":"x","event":"click","ts":"2262-04-11T23:47:16.854Z"}',  # the ns limit
    b'{"event_id":"x","event":"click","ts":"2262-04-11T23:47:16.855Z"}',
    b'{"event_id":"x","event":"click","ts":"1677-09-21T00:12:43.146Z"}',
    b'{"event_id":"x","event":"click","ts":"1677-09-21T00:12:43.145Z"}',
    b'{"event_id":"x","event":"click","ts":"\xd9\xa2026-03-01T10:00:00Z"}',  # Arabic digit
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":1e3}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":-0}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":1772359200123.0000000000000001}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":12345678901234567890}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":123456789012345678901234567890}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":9223372036854}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":9223372036855}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":1e400}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":1.5e-400}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":false}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":[1]}',
    b'{"event_id":"y","event_type":"ui.click","timestamp_ms":{"v":1}}',
    b'{"event_id":null,"event_type":"ui.click","timestamp_ms":0,"user":{"customer_id":7}}',
    b'{"event_id":12,"event":"hover","ts":"2026-03-01T10:00:00Z","customerId":true}',
    b'{"event_id":{"b": 1, "a": [1, 2]},"event":"hover","ts":"2026-03-01T10:00:00Z"}',
    b'{"event_id":"z1","event":"hover","ts":"2026-03-01T10:00:00Z","customerId":"\xc3\xa9l\xc3\xa8ve"}',
    b'{"event_id":"z2","event":"hover","ts":"2026-03-01T10:00:00Z","props":{"element":["a"]}}',
    b'{"event_id":"z3","event":"hover","ts":"2026-03-01T10:00:00Z","props":"{\\"page\\":1}"}',
    b'{"event_id":"z4","event":"hover","ts":"2026-03-01T10:00:00Z","props":"[1]"}',
    b'{"event_id":"z5","event":"hover","ts":"2026-03-01T10:00:00Z","props":" {\\"element\\":'
    b'\\"Subscribe\\"} "}',
    b'{"event_id":"z6","event":"hover","ts":"2026-03-01T10:00:00Z","props":"{\\"s\\":\\"\\\\ud800\\"}"}',
    b'{"event_id":"z7","event":"hover","ts":"2026-03-01T10:00:00Z","props":5}',
    b'{"event_id":"z8","event_type":"ui.hover","timestamp_ms":1772359200000,"context":'
    b'{"page":{"path":["x"]},"element":{"id":"subscribe\\u00a0x"}}}',
    b'{"event_id":"z9","event":"hover","ts":"2026-03-01T10:00:00Z","customerId":"\\u2028c1\\t"}',
    b'{"event_id":"dup","event":"hover","ts":"2026-03-01T10:00:00Z","customerId":"C1"}',
    b'{"event_id":"dup","event":"hover","ts":"2026-03-01T10:00:00Z","customerId":"C1"}',
]


def case_strictness_corpus(normalise: Callable[..., ClickstreamResult]) -> None:
    payload = gzip.compress(b"\n".join(STRICTNESS_LINES) + b"\n")
    result = normalise([("corpus", at(12), payload)], D)
    reasons = dict(zip(result.quarantine.line_no, result.quarantine.reason, strict=True))
    assert reasons[2] == "invalid_json" and reasons[16] == "invalid_json"
    assert 19 not in reasons and 20 not in reasons  # a surrogate pair and an escaped \
    assert result.accounting["duplicate"] >= 1
    assert result.accounting["lines_read"] == len(STRICTNESS_LINES)


OWN_CASES: dict[str, Callable[[Callable[..., ClickstreamResult]], None]] = {
    "line_numbers": case_line_numbers,
    "unreadable_objects": case_unreadable_objects,
    "strictness_corpus": case_strictness_corpus,
}


def _play_clickstream(replay: ClickstreamReplay, case: str) -> None:
    with redirected(
        clickstream_cases,
        read_lines=lambda objects: _Objects(tuple(objects)),
        normalise_clickstream=replay.normalise_clickstream,
    ):
        if case in OWN_CASES:
            OWN_CASES[case](replay.normalise)
        elif case.startswith("extension-"):
            _EXTENSION_TEST(EXTENSIONS[int(case.split("-")[1])])
        else:
            getattr(clickstream_cases, case)()


ALL_CLICKSTREAM = [
    *CLICKSTREAM_CASES,
    *(f"extension-{i}" for i in range(len(EXTENSIONS))),
    *OWN_CASES,
]


@pytest.fixture(scope="module")
def clickstream_replay(tmp_path_factory: pytest.TempPathFactory) -> ClickstreamReplay:
    replay = ClickstreamReplay()
    for case in ALL_CLICKSTREAM:
        replay.begin(case, replaying=False)
        _play_clickstream(replay, case)
    replay.run_on_spark(
        local_spark(), tmp_path_factory.mktemp("clickstream_cases"), alone=["unreadable_objects"]
    )
    return replay


@pytest.mark.parametrize("case", ALL_CLICKSTREAM)
def test_clickstream_case_on_spark(case: str, clickstream_replay: ClickstreamReplay) -> None:
    clickstream_replay.begin(case, replaying=True)
    _play_clickstream(clickstream_replay, case)
    assert clickstream_replay.cursor == len(clickstream_replay.calls[case])
    if case != "test_events_sorted_and_empty_input":
        assert clickstream_replay.cursor >= 1  # the case really went through Spark


# ---------------------------------------------------------------- the session cases

SESSION_CASES = [
    "test_gap_of_exactly_thirty_minutes_stays_and_one_more_millisecond_splits",
    "test_midnight_splits_sessions_across_partitions_and_within_one_table",
    "test_counts_per_session_customers_sorted_and_anonymous_excluded",
    "test_ties_in_event_time_and_unsorted_input",
    "test_empty_inputs_give_typed_empty_frames",
    "test_customer_activity_numbers_on_a_tiny_case",
    "test_short_window_has_no_earlier_part",
]


def _play_sessions(replay: SessionsReplay, case: str) -> None:
    with redirected(
        session_cases, sessionise=replay.sessionise, customer_activity=replay.customer_activity
    ):
        getattr(session_cases, case)()


@pytest.fixture(scope="module")
def sessions_replay() -> SessionsReplay:
    replay = SessionsReplay()
    for case in SESSION_CASES:
        replay.begin(case, replaying=False)
        _play_sessions(replay, case)
    replay.run_on_spark(local_spark())
    return replay


@pytest.mark.parametrize("case", SESSION_CASES)
def test_sessions_case_on_spark(case: str, sessions_replay: SessionsReplay) -> None:
    sessions_replay.begin(case, replaying=True)
    _play_sessions(sessions_replay, case)
    assert sessions_replay.cursor == len(sessions_replay.calls[case]) >= 1


# ---------------------------------------------------------------- a generated messy history

TINY_SETTINGS = PipelineSettings(
    history_start=HISTORY_START,
    horizon_days=1,
    grace_days=1,
    feature_window_days=2,
    training_window_days=3,
    training=TrainingConfig(
        validation_days=1,
        test_days=1,
        tuning=TuningConfig(max_trials=1, time_budget_s=10),
        gate=GatePolicy(auc_floor=0.0),  # three days of labels: let the first model serve
    ),
)
"""The smallest graph with every asset: labels mature after 2 days, features need 2 days,
a model 3 days of matured labels; the last day of the history is the first scored one."""
MESSY_DAYS = (TINY_SETTINGS.scores_start - HISTORY_START).days + 1
MESSY_FAULTS = (
    Fault("late_events", HISTORY_START),
    Fault("malformed_burst", HISTORY_START + timedelta(days=1)),
    Fault("volume_drop", HISTORY_START + timedelta(days=2)),
    Fault("clickstream_outage", HISTORY_START + timedelta(days=4)),
)
ACTIVITY_WINDOWS = (1, 3, 6)


def _add_objects(landing: Path) -> None:
    """Objects with contract names on day 2: truncated, not gzip, zero bytes, and one whose
    record comes from a device clock four days ahead (``future``)."""
    some = sorted((landing / "clickstream/2026/01/02").rglob("*.gz"))[5].read_bytes()
    hour = landing / "clickstream/2026/01/02/07"
    hour.mkdir(parents=True, exist_ok=True)
    name = "churn-clickstream-1-2026-01-02-07-0{0}-00-00000000-0000-0000-0000-00000000000{0}.gz"
    (hour / name.format(1)).write_bytes(some[: len(some) // 2])
    (hour / name.format(2)).write_bytes(b"<html>503</html>")
    (hour / name.format(3)).write_bytes(b"")
    ahead = b'{"event_id":"m-ahead","event_type":"ui.click","timestamp_ms":1767672000000}\n'
    (hour / name.format(4)).write_bytes(gzip.compress(ahead, mtime=0))  # 2026-01-06 04:00


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> GeneratedHistory:
    history = generate_history(
        tmp_path_factory.mktemp("messy"), days=MESSY_DAYS, customers=300, faults=MESSY_FAULTS
    )
    _add_objects(history.landing)
    return history


@dataclass
class MessyParity:
    days: list[date]
    embedded: list[ClickstreamResult]
    spark: list[ClickstreamResult]
    embedded_sessions: list[pd.DataFrame]
    spark_sessions: list[pd.DataFrame]
    embedded_activity: list[pd.DataFrame]
    spark_activity: list[pd.DataFrame]


@pytest.fixture(scope="module")
def messy_parity(messy: GeneratedHistory) -> MessyParity:
    """Both engines over every day; Spark in three batched jobs (normalise, sessionise,
    activity), the embedded engine day by day."""
    spark = local_spark()
    landing = LandingZone(url=str(messy.landing), s3=S3Resource())
    listings = [
        landing.clickstream_objects(*clickstream_window(day, LATENESS)).objects
        for day in messy.days
    ]
    embedded = [
        EmbeddedEngine().normalise(landing, objects, day, LATENESS)
        for day, objects in zip(messy.days, listings, strict=True)
    ]
    located = [
        [(landing.uri(o.key), o.key, o.arrival_time, o.size) for o in objs] for objs in listings
    ]
    got = normalise_many(
        spark, [(objs, day, LATENESS) for objs, day in zip(located, messy.days, strict=True)]
    )
    embedded_sessions = [core_sessions.sessionise(r.events, GAP) for r in embedded]
    spark_sessions = sessionise_many(spark, [(r.events, GAP) for r in got])
    all_sessions = pd.concat(embedded_sessions, ignore_index=True)
    as_of = messy.days[-1]
    return MessyParity(
        days=messy.days,
        embedded=embedded,
        spark=got,
        embedded_sessions=embedded_sessions,
        spark_sessions=spark_sessions,
        embedded_activity=[
            core_sessions.customer_activity(all_sessions, as_of, w) for w in ACTIVITY_WINDOWS
        ],
        spark_activity=customer_activity_many(
            spark, [(all_sessions, as_of, w) for w in ACTIVITY_WINDOWS]
        ),
    )


@pytest.mark.parametrize("offset", range(MESSY_DAYS))
def test_raw_clickstream_and_sessions_identical_on_a_messy_history(
    offset: int, messy_parity: MessyParity
) -> None:
    assert_same_result(messy_parity.embedded[offset], messy_parity.spark[offset])
    assert_same_frame(
        messy_parity.embedded_sessions[offset],
        messy_parity.spark_sessions[offset],
        ["customer_id", "session_start"],
    )
    assert len(messy_parity.spark[offset].events) and len(messy_parity.spark_sessions[offset])


def test_the_messy_history_has_every_kind_of_mess(messy_parity: MessyParity) -> None:
    total = {k: sum(r.accounting[k] for r in messy_parity.spark) for k in ACCOUNTING_KEYS}
    # object_over_cap: no generated object is near the default caps (256 MiB, 10 million
    # lines); test_object_caps_applied_by_spark_exactly_as_embedded covers it on small caps.
    for reason in (r for r in QUARANTINE_REASONS if r != "object_over_cap"):
        assert total[f"quarantined_{reason}"] > 0, reason
    for key in ("duplicate", "anonymous", "other_date", "objects_unreadable"):
        assert total[key] > 0, key
    assert messy_parity.spark[1].accounting["quarantined_invalid_json"] >= 3000  # the burst


@pytest.mark.parametrize("index", range(len(ACTIVITY_WINDOWS)))
def test_customer_activity_identical_on_the_messy_history(
    index: int, messy_parity: MessyParity
) -> None:
    expected, got = messy_parity.embedded_activity[index], messy_parity.spark_activity[index]
    assert len(expected) > 50
    assert_same_frame(expected, got, ["customer_id"])


# ---------------------------------------------------------------- the whole graph on Spark


def _round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    """What the parquet warehouse gives back for ``frame``."""
    return from_parquet_bytes(to_parquet_bytes(frame))


def test_whole_graph_materializes_on_spark(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Every planned step of a small history succeeds with the Spark engine, and its raw,
    sessions and features tables are those of the embedded engine. (The messy history's
    malformed burst would fail the blocking quarantine check: this one has only the mess of
    normal operation.)"""
    # 3,000 customers: the honest split holds a quarter of them out for validation, and with
    # H = G = 1 a day has only a few churners; fewer can leave that group without one.
    history = generate_history(tmp_path_factory.mktemp("graph"), days=MESSY_DAYS, customers=3000)
    local_spark()
    resources = storage_resources(
        landing_url=str(history.landing),
        warehouse_url=str(tmp_path / "warehouse"),
        model_store_url=str(tmp_path / "models"),
        engine=SparkEngine(pyspark=spark_resource(LOCAL_MASTER)),
    )
    defs = build_definitions(settings=TINY_SETTINGS, resources=resources)
    with dg.DagsterInstance.ephemeral() as instance:
        outcomes = run_days(defs, instance, TINY_SETTINGS, history.days)
    steps = {a for o in outcomes for a in o.step.assets}
    assert {"raw_clickstream", "sessions", "features", "labels", "model", "scores"} <= steps
    for outcome in outcomes:
        gate_only = [
            c.check_name for c in outcome.checks if not c.passed and c.severity.value == "ERROR"
        ] == ["champion_gate"]
        assert outcome.success or (outcome.step.assets == ("model",) and gate_only), outcome
        assert sorted(outcome.materialized) == sorted(outcome.step.assets)

    warehouse: ParquetWarehouse = resources["io_manager"]
    landing = LandingZone(url=str(history.landing), s3=S3Resource())
    embedded = EmbeddedEngine()

    def stored(asset: str, day: date) -> Any:
        return warehouse.read_tables(warehouse.partition_prefix([asset], day.isoformat()))

    sessions: dict[str, pd.DataFrame] = {}
    for i, day in enumerate(history.days):
        objects = landing.clickstream_objects(*clickstream_window(day, LATENESS)).objects
        expected_raw = embedded.normalise(landing, objects, day, LATENESS)
        raw = stored("raw_clickstream", day)
        for name in ("events", "quarantine"):
            assert_same_frame(
                _round_trip(getattr(expected_raw, name)), raw[name], ["object_key", "line_no"]
            )
        sessions[day.isoformat()] = _round_trip(embedded.sessionise(expected_raw.events, GAP))
        assert_same_frame(
            sessions[day.isoformat()], stored("sessions", day), ["customer_id", "session_start"]
        )
        window = [d.isoformat() for d in history.days[max(0, i - 1) : i + 1]]
        activity = embedded.customer_activity(
            concat_days({k: sessions[k] for k in window}), day, TINY_SETTINGS.feature_window_days
        )
        billing = concat_days({k: stored("raw_billing", date.fromisoformat(k)) for k in window})
        expected = build_features(billing, activity, day, TINY_SETTINGS.feature_window_days)
        assert_same_frame(_round_trip(expected), stored("features", day), ["customer_id"])
    scores = stored("scores", history.days[-1])
    assert isinstance(scores, pd.DataFrame) and len(scores) > 0


# ---------------------------------------------------------------- sessions and configuration


def test_a_running_session_is_joined_and_left_running(spark: SparkSession) -> None:
    resource = SparkSessionResource(master=LOCAL_MASTER)
    with dg.build_init_resource_context() as context:
        resource.setup_for_execution(context)
        assert resource.spark_session.sparkContext is spark.sparkContext
        resource.teardown_after_execution(context)
    assert not spark.sparkContext._jsc.sc().isStopped()
    with pytest.raises(RuntimeError, match="already running"):
        SparkSessionResource(master="local[1]").spark_session  # noqa: B018 - one per process


def test_engine_is_selected_by_configuration(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One setting picks the master: the resource reads it from the environment at run time."""
    monkeypatch.setenv("CHURN_SPARK_MASTER", LOCAL_MASTER)
    engine = SparkEngine(pyspark=spark_resource(dg.EnvVar("CHURN_SPARK_MASTER")))

    @dg.asset
    def master(engine: SparkEngine) -> str:
        return engine.pyspark.spark_session.sparkContext.master

    result = dg.materialize([master], resources={"engine": engine})
    assert result.output_for_node("master") == LOCAL_MASTER
    config = spark_resource(LOCAL_MASTER).session_config()
    assert config["spark.sql.session.timeZone"] == "UTC"
    assert config["spark.ui.enabled"] == "false"
    assert config["spark.driver.bindAddress"] == "127.0.0.1"
    remote = spark_resource("spark://cluster.internal:7077").session_config()
    assert "spark.driver.bindAddress" not in remote  # executors elsewhere must reach the driver
    assert remote["spark.master"] == "spark://cluster.internal:7077"


def test_object_names_and_paths(spark: SparkSession, tmp_path: Path) -> None:
    """A name without .gz is refused (Hadoop would read the gzip bytes as text); a path
    with spaces and URI-reserved characters is read."""
    plain = tmp_path / "object.json"
    plain.write_bytes(gzip.compress(b"{}\n"))
    with pytest.raises(ValueError, match=r"\.gz"):
        normalise_objects(spark, [(str(plain), "k", at(1), 10)], D)
    odd = tmp_path / "a b+c%d=é,x;y@z~(1)!$&'" / "x.gz"
    odd.parent.mkdir()
    shutil.copy(plain, odd)
    result = normalise_objects(spark, [(str(odd), "k", at(1), odd.stat().st_size)], D)
    assert result.accounting["lines_read"] == 1
    assert result.accounting["quarantined_unknown_shape"] == 1


# ---------------------------------------------------------------- object caps

SMALL_CAPS = ObjectLimits(max_bytes=1 << 20, max_lines=1000, max_stored_bytes=100)


def test_object_caps_applied_by_spark_exactly_as_embedded(
    spark: SparkSession, tmp_path: Path
) -> None:
    """Under a 1 MB / 1,000-line cap: a 3 MB gzip bomb of newlines, 600 KB of newlines
    (over the line cap only), one 3 MB line, a
    truncated bomb that goes over the cap before its end, and an object listed larger than
    the cap (its file deleted: any read would fail) are each one object_over_cap row with
    the embedded engine's note; the good records around them are all there."""
    good = gzip.compress(
        b"".join(json.dumps(_web(f"e{i}", customerId="C1")).encode() + b"\n" for i in range(50))
    )
    long_line = gzip.compress(b" " * (3 << 20))
    payloads = {
        "good": good,
        "newline-bomb": gzip.compress(b"\n" * (3 << 20)),
        "many-newlines": gzip.compress(b"\n" * (600 << 10)),  # under the byte cap
        "one-long-line": long_line,
        "truncated-bomb": long_line[:-20],
        "few-lines-over": gzip.compress(b"x\n" * 1000 + b"tail"),  # the open tail is 1,001
        "not-gzip": b"not gzip at all, and longer than the hundred stored bytes " * 3,
        "listed-over-cap": gzip.compress(b"{}\n"),
    }
    located, refs = [], []
    for hour, (key, data) in enumerate(payloads.items(), start=1):
        path = tmp_path / f"{key}.gz"
        path.write_bytes(data)
        size = (2 << 20) if key == "listed-over-cap" else len(data)
        located.append((str(path), key, at(hour), size))
        refs.append(ClickstreamObject(key, at(hour), size, ""))
    (tmp_path / "listed-over-cap.gz").unlink()
    expected = core_clickstream.normalise_objects(
        refs, lambda key: payloads[key], D, LATENESS, SMALL_CAPS
    )
    got = normalise_objects(spark, located, D, LATENESS, limits=SMALL_CAPS)
    assert_same_result(expected, got)

    q = got.quarantine.set_index("object_key")
    over = q.loc[q["reason"] == "object_over_cap"]
    assert sorted(over.index) == sorted(set(payloads) - {"good", "not-gzip"})
    assert (over["line_no"] == 0).all()
    notes = {key: json.loads(raw) for key, raw in over["raw_line"].items()}
    assert notes["newline-bomb"]["cap"] == "bytes"  # the first 1 MB chunk is over it
    assert notes["many-newlines"]["cap"] == "lines"
    assert notes["few-lines-over"]["lines_read"] == 1001
    assert notes["one-long-line"] == {
        "cap": "bytes",
        "limit": 1 << 20,
        "compressed_bytes": len(long_line),
        "decompressed_bytes_read": (1 << 20) + 1,
        "lines_read": 0,
    }
    assert notes["listed-over-cap"]["compressed_bytes"] == 2 << 20
    assert q.loc["not-gzip", "raw_line"] == payloads["not-gzip"][:100]
    assert got.accounting["objects_unreadable"] == 1  # over-cap objects are not unreadable
    assert got.accounting["quarantined_object_over_cap"] == 6
    assert got.accounting["objects_read"] == len(payloads)
    assert got.accounting["valid"] == 50 and set(got.events["event_id"]) == {
        f"e{i}" for i in range(50)
    }
    # read by the next day, they are other_date, never quarantined twice
    next_day = normalise_objects(spark, located, D + timedelta(days=1), LATENESS, limits=SMALL_CAPS)
    assert next_day.quarantine.empty and next_day.accounting["other_date"] == 7 + 50


def test_the_spark_pre_pass_ships_the_rule_by_value() -> None:
    """Executors run ``bounded_read`` without this package installed: the pickled rule
    unpickles and answers in a bare interpreter (no churn_assets on its path)."""
    import subprocess
    import sys

    from pyspark import cloudpickle

    from churn_assets.core import bounded_read

    cloudpickle.register_pickle_by_value(bounded_read)
    payload = cloudpickle.dumps(lambda raw: bounded_read.object_problem(raw, SMALL_CAPS))
    probe = (
        "import pickle, sys, gzip; f = pickle.loads(sys.stdin.buffer.read());"
        "print(f(gzip.compress(b'\\n' * 2000))[0], f(gzip.compress(b'ok\\n')))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe], input=payload, capture_output=True, check=True
    )
    assert done.stdout.decode().split() == ["object_over_cap", "None"]
