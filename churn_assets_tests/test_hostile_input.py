"""Hostile and broken landing input (issue 17): bounded memory, nothing read outside the
landing zone, nothing skipped silently, metadata that is data and not markup.

One test (or more) per row of the issue's table, each on a small landing zone of its own,
asserting the outcome and that every good record around the bad input is still there.
Memory of the bomb cases is measured in this process with ``tracemalloc`` (Python and numpy
allocations: all of what the read path allocates; nothing reaches DuckDB for an object that
is over a cap).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from churn_assets.checks.raw import (
    raw_billing_results,
    rejected_billing_results,
    unread_files_result,
)
from churn_assets.core.billing import BILLING_COLUMNS, BillingRejected, parse_billing_day
from churn_assets.core.bounded_read import DEFAULT_LIMITS, ObjectLimits, split_lines
from churn_assets.core.clickstream import OVER_CAP, normalise_objects, read_object
from churn_assets.core.landing_layout import (
    MISFILED,
    OUTSIDE_LAYOUT,
    REFUSED_LINK,
    UNKNOWN_BILLING_FILE,
    UNRECOGNISED_NAME,
    clickstream_window,
)
from churn_assets.core.sessions import sessionise
from churn_assets.metadata import escape_markdown, markdown_table
from churn_assets.resources.landing import LandingZone
from churn_assets.resources.storage import LocalObjectStore
from churn_assets_tests.support import SMALL_SETTINGS, local_definitions

pytest_plugins = [f"{__package__}.s3_server" if __package__ else "s3_server"]

D = date(2026, 1, 6)
LATENESS = timedelta(hours=2)
UTC = timezone.utc
MiB = 1 << 20


def key_at(moment: datetime, tag: str = "0") -> str:
    return (
        f"clickstream/{moment:%Y/%m/%d/%H}/"
        f"churn-clickstream-1-{moment:%Y-%m-%d-%H-%M-%S}-{tag:0>8}-aaaa-bbbb-cccc-dddddddddddd.gz"
    )


def event(event_id: str, customer: str, moment: datetime) -> bytes:
    record = {
        "event_id": event_id,
        "event": "click",
        "ts": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "customerId": customer,
        "props": json.dumps({"page": "/pricing", "element": "subscribe_button"}),
    }
    return json.dumps(record).encode()


def good_object(hour: int, n: int = 5, tag: str = "0", customer: str = "C0000001") -> bytes:
    moment = datetime(D.year, D.month, D.day, hour, 10, tzinfo=UTC)
    lines = [
        event(f"w-{hour}-{tag}-{i}", customer, moment + timedelta(minutes=i)) for i in range(n)
    ]
    return gzip.compress(b"\n".join(lines) + b"\n")


def bomb(unit: bytes, member_bytes: int, members: int) -> bytes:
    """A small gzip of ``member_bytes * members`` bytes of ``unit`` (repeated members)."""
    member = gzip.compress(unit * member_bytes, compresslevel=9)
    return member * members


def zone(root: Path, **caps: int) -> LandingZone:
    return LandingZone(url=str(root), s3=S3Resource(), **caps)


def put(root: Path, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def normalise(landing: LandingZone, day: date = D):
    listing = landing.clickstream_objects(*clickstream_window(day, LATENESS), LATENESS)
    result = normalise_objects(listing.objects, landing.read, day, LATENESS, landing.object_limits)
    return listing, result


def peak_bytes(call) -> tuple[object, int]:
    tracemalloc.start()
    try:
        out = call()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def good_event_ids(hours: list[int], n: int = 5) -> set[str]:
    return {f"w-{h}-0-{i}" for h in hours for i in range(n)}


# ---------------------------------------------------------------- gzip bombs


@pytest.mark.parametrize(
    ("member_bytes", "members", "label"),
    [(16 * MiB, 128, "2 GiB of newlines"), (16 * MiB, 1, "16 MiB of newlines")],
)
def test_a_newline_bomb_is_one_over_cap_row_read_in_bounded_memory(
    tmp_path: Path, member_bytes: int, members: int, label: str
) -> None:
    data = bomb(b"\n", member_bytes, members)
    assert len(data) < 3 * MiB  # small on disk, huge decompressed
    arrival = datetime(D.year, D.month, D.day, 5, tzinfo=UTC)
    read, peak = peak_bytes(lambda: read_object("k", arrival, lambda: data))
    assert read.problem == OVER_CAP and read.lines is None, label
    note = json.loads(read.raw)
    assert note["cap"] == "lines" and note["limit"] == DEFAULT_LIMITS.max_lines
    assert note["compressed_bytes"] == len(data)
    # Before: 5.7 GB (16 MiB) and killed at 8.4 GB (2 GiB). Now the lines cap stops reading
    # after ~10 MB of newlines; the line lengths held until then are ~80 MB.
    assert peak < 200 * MiB, f"{label}: peak {peak / MiB:.0f} MiB"

    # The same object in a landing zone with good objects around it.
    put(tmp_path, key_at(arrival, "bomb"), data)
    for hour in (3, 9):
        put(tmp_path, key_at(datetime(D.year, D.month, D.day, hour, tzinfo=UTC)), good_object(hour))
    _, result = normalise(zone(tmp_path))
    assert set(result.events["event_id"]) == good_event_ids([3, 9])
    assert result.accounting["quarantined_object_over_cap"] == 1
    over = result.quarantine.loc[result.quarantine["reason"] == OVER_CAP]
    assert list(over["object_key"]) == [key_at(arrival, "bomb")] and list(over["line_no"]) == [0]
    assert len(over["raw_line"].iloc[0]) < 300  # a note, not the object's bytes


def test_one_enormous_line_stops_at_the_byte_cap_with_memory_bounded_by_it(tmp_path: Path) -> None:
    data = bomb(b" ", 16 * MiB, 128)  # 2 GiB of spaces, no newline: one line
    limits = ObjectLimits(max_bytes=48 * MiB)
    arrival = datetime(D.year, D.month, D.day, 5, tzinfo=UTC)
    read, peak = peak_bytes(lambda: read_object("k", arrival, lambda: data, limits))
    assert read.problem == OVER_CAP
    note = json.loads(read.raw)
    assert note["cap"] == "bytes" and note["limit"] == 48 * MiB
    assert 48 * MiB < note["decompressed_bytes_read"] <= 48 * MiB + 2 * MiB
    assert peak < 48 * MiB + 16 * MiB, f"peak {peak / MiB:.0f} MiB"  # the cap, not 2 GiB

    put(tmp_path, key_at(arrival, "bomb"), data)
    put(tmp_path, key_at(datetime(D.year, D.month, D.day, 7, tzinfo=UTC)), good_object(7))
    _, result = normalise(zone(tmp_path, max_object_bytes=48 * MiB))
    assert set(result.events["event_id"]) == good_event_ids([7])
    assert result.accounting["quarantined_object_over_cap"] == 1


def test_an_object_listed_larger_than_the_cap_is_not_even_fetched() -> None:
    def fetch() -> bytes:
        raise AssertionError("fetched")

    arrival = datetime(D.year, D.month, D.day, 5, tzinfo=UTC)
    read = read_object("k", arrival, fetch, ObjectLimits(max_bytes=1000), size=1001)
    assert read.problem == OVER_CAP and json.loads(read.raw)["compressed_bytes"] == 1001


def test_splitting_under_caps_keeps_crlf_empty_lines_and_a_last_line_without_newline() -> None:
    payload = b'{"a":1}\r\n\n{"b":2}\r\r\nlast\r'
    lines = split_lines(gzip.compress(payload), chunk_bytes=3)  # lines cross chunk borders
    data = lines.data.tobytes()
    offsets = [0, *lines.lengths.cumsum()]
    pieces = [data[offsets[i] : offsets[i + 1]] for i in range(len(lines))]
    assert pieces == [b'{"a":1}', b"", b'{"b":2}\r', b"last"]


def test_unreadable_objects_keep_only_their_first_bytes(tmp_path: Path) -> None:
    arrival = datetime(D.year, D.month, D.day, 5, tzinfo=UTC)
    garbage = os.urandom(200_000)
    read = read_object("k", arrival, lambda: garbage, ObjectLimits(max_stored_bytes=1000))
    assert read.problem == "unreadable_object" and read.raw == garbage[:1000]


def test_a_billing_part_over_a_cap_rejects_the_day_with_its_name_and_the_cap() -> None:
    header = ",".join(BILLING_COLUMNS).encode() + b"\n"
    part = gzip.compress(header) + bomb(b"\n", 16 * MiB, 2)
    with pytest.raises(BillingRejected) as rejected:
        parse_billing_day([("billing/dt=2026-01-06/part-00000.csv.gz", part)], D)
    assert rejected.value.reason == "part_over_cap"
    assert "part-00000.csv.gz" in rejected.value.details
    assert f"{DEFAULT_LIMITS.max_lines:,}" in rejected.value.details


# ---------------------------------------------------------------- outside the landing zone


def test_a_symlink_to_a_file_outside_the_landing_zone_is_reported_not_read(
    tmp_path: Path,
) -> None:
    root, outside = tmp_path / "landing", tmp_path / "outside"
    outside.mkdir()
    secret = outside / "events.gz"
    secret.write_bytes(good_object(4, tag="x", customer="C0000999"))
    put(root, key_at(datetime(D.year, D.month, D.day, 3, tzinfo=UTC)), good_object(3))
    links = {
        key_at(datetime(D.year, D.month, D.day, 4, tzinfo=UTC), "link"): secret,
        key_at(datetime(D.year, D.month, D.day, 6, tzinfo=UTC), "pass"): Path("/etc/passwd"),
    }
    for key, target in links.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).symlink_to(target)
    landing = zone(root)
    listing, result = normalise(landing)
    assert {u.key: u.reason for u in listing.unread} == dict.fromkeys(links, REFUSED_LINK)
    assert all("outside the landing zone" in u.detail for u in listing.unread)
    assert not {o.key for o in listing.objects} & set(links)
    assert set(result.events["event_id"]) == good_event_ids([3])  # C0000999 never ingested
    assert result.quarantine.empty  # no bytes of /etc/passwd stored anywhere
    for key in links:
        with pytest.raises(KeyError, match="outside"):
            landing.read(key)


def test_a_symlinked_directory_is_reported_and_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "landing", tmp_path / "outside"
    moment = datetime(D.year, D.month, D.day, 8, tzinfo=UTC)
    put(outside, key_at(moment), good_object(8, customer="C0000999"))
    put(root, key_at(datetime(D.year, D.month, D.day, 3, tzinfo=UTC)), good_object(3))
    (root / f"clickstream/{moment:%Y/%m/%d/%H}").symlink_to(
        outside / f"clickstream/{moment:%Y/%m/%d/%H}"
    )
    listing, result = normalise(zone(root))
    assert [(u.key, u.reason) for u in listing.unread] == [
        (f"clickstream/{moment:%Y/%m/%d/%H}", REFUSED_LINK)
    ]
    assert "not followed" in listing.unread[0].detail
    assert set(result.events["event_id"]) == good_event_ids([3])


# ---------------------------------------------------------------- nothing skipped silently


def test_a_misfiled_object_near_its_folder_is_read_by_its_partition_and_reported(
    tmp_path: Path,
) -> None:
    arrival = datetime(D.year, D.month, D.day, 0, 30, tzinfo=UTC)
    name = key_at(arrival, "misfiled").rsplit("/", 1)[1]
    key = f"clickstream/{D - timedelta(days=1):%Y/%m/%d}/23/{name}"  # the previous day's folder
    put(tmp_path, key, good_object(0))
    put(tmp_path, key_at(datetime(D.year, D.month, D.day, 3, tzinfo=UTC)), good_object(3))
    listing, result = normalise(zone(tmp_path))
    assert key in {o.key for o in listing.objects}
    assert set(result.events["event_id"]) == good_event_ids([0, 3])
    [misfiled] = [u for u in listing.unread if u.reason == MISFILED]
    assert misfiled.key == key and "read by partition(s) 2026-01-05, 2026-01-06" in misfiled.detail


def test_a_misfiled_object_far_from_its_folder_is_flagged_by_the_folders_partition(
    tmp_path: Path,
) -> None:
    arrival = datetime(D.year, D.month, D.day, 10, tzinfo=UTC)
    name = key_at(arrival, "far").rsplit("/", 1)[1]
    key = f"clickstream/2026/01/09/10/{name}"  # the example: folder 01/09, name 01-06
    put(tmp_path, key, good_object(10))
    put(tmp_path, "clickstream/2026/01/09/10/notes.txt", b"hello")
    landing = zone(tmp_path)
    own_listing, _ = normalise(landing, D)
    assert key not in {o.key for o in own_listing.objects}
    folder_listing, _ = normalise(landing, date(2026, 1, 9))
    reasons = {u.key: (u.reason, u.detail) for u in folder_listing.unread}
    assert reasons[key][0] == MISFILED and "NOT read" in reasons[key][1]
    assert reasons["clickstream/2026/01/09/10/notes.txt"][0] == UNRECOGNISED_NAME
    # Reported once: by the folder's own partition, not by its neighbours.
    neighbour, _ = normalise(landing, date(2026, 1, 8))
    assert not neighbour.unread


def test_extra_files_in_a_billing_day_are_reported_and_not_read(tmp_path: Path) -> None:
    day = "billing/dt=2026-01-06/"
    for name in ("part-00000.csv.gz", "export.csv.gz", "part-00001.csv", "PART-00002.CSV.GZ"):
        put(tmp_path, day + name, b"x")
    put(tmp_path, day + "sub/part-00003.csv.gz", b"x")
    put(tmp_path, day + "_SUCCESS", b"")
    delivery = zone(tmp_path).billing_delivery(D)
    assert delivery is not None
    assert [p.key for p in delivery.parts] == [day + "part-00000.csv.gz"]
    unread = {u.key: u.reason for u in delivery.unread}
    assert unread == {
        day + name: UNKNOWN_BILLING_FILE
        for name in (
            "export.csv.gz",
            "part-00001.csv",
            "PART-00002.CSV.GZ",
            "sub/part-00003.csv.gz",
        )
    }


STRAYS = {
    # key written -> what the partition of D reports (a file, or the folder that holds it)
    "clickstream/readme.txt": "clickstream/readme.txt",
    "clickstream/tmp/churn-clickstream-1-2026-01-06-01-00-00-x.gz": "clickstream/tmp/",
    "clickstream/2026/13/01/00/x.gz": "clickstream/2026/13/",
    "clickstream/2026/notes.md": "clickstream/2026/notes.md",
    "clickstream/2026/01/32/00/x.gz": "clickstream/2026/01/32/",
    "clickstream/2026/01/export.json.gz": "clickstream/2026/01/export.json.gz",
}
BILLING_STRAYS = {
    "billing/export.csv.gz": "billing/export.csv.gz",
    "billing/dt=2026-02-30/part-00000.csv.gz": "billing/dt=2026-02-30/",
    "billing/dt=20260106/part-00000.csv.gz": "billing/dt=20260106/",
    "billing/old/dt=2026-01-06/part-00000.csv.gz": "billing/old/",
}
NOT_STRAYS = [  # in the layout, or outside the year and month that D's partition lists
    "clickstream/2025/13/01/00/x.gz",
    "clickstream/2026/02/30/00/x.gz",
    "clickstream/2026/01/05/03/churn-clickstream-1-2026-01-05-03-00-00-x.gz",
    "billing/dt=2026-01-05/part-00000.csv.gz",
    "billing/dt=2026-01-05/_SUCCESS",
]


@pytest.mark.parametrize("where", ["local", "s3"])
def test_keys_outside_any_day_folder_are_reported_by_the_partition(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Files and folders above the day folders (delimiter listings of the root, the year and
    the month of the partition; ``billing/``) are reported as outside_layout; the good
    object and billing part around them are read; a bad hour folder of the day is reported
    too; the sensor's billing listing stays one prefix listing (no strays)."""
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        landing = LandingZone(
            url=f"s3://{bucket}/landing", s3=request.getfixturevalue("dagster_s3")
        )
    else:
        landing = zone(tmp_path)
    good = key_at(datetime(D.year, D.month, D.day, 1, tzinfo=UTC))
    writes = {good: good_object(1), "clickstream/2026/01/06/25/junk.txt": b"x"}
    writes |= dict.fromkeys([*STRAYS, *BILLING_STRAYS, *NOT_STRAYS], b"x")
    writes |= {
        "billing/dt=2026-01-06/part-00000.csv.gz": b"x",
        "billing/dt=2026-01-06/_SUCCESS": b"",
    }
    for key, data in writes.items():
        landing.store.put(key, data)

    listing, result = normalise(landing)
    assert [o.key for o in listing.objects] == [good] and result.accounting["valid"] == 5
    unread = {u.key: u.reason for u in listing.unread}
    assert unread == {
        **dict.fromkeys(STRAYS.values(), OUTSIDE_LAYOUT),
        "clickstream/2026/01/06/25/junk.txt": UNRECOGNISED_NAME,
    }
    check = unread_files_result(listing.unread, 20)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["unread_by_reason"].value == {OUTSIDE_LAYOUT: 6, UNRECOGNISED_NAME: 1}

    delivery = landing.billing_delivery(D, strays=True)
    assert delivery is not None
    assert [p.key for p in delivery.parts] == ["billing/dt=2026-01-06/part-00000.csv.gz"]
    assert {u.key: u.reason for u in delivery.unread} == dict.fromkeys(
        BILLING_STRAYS.values(), OUTSIDE_LAYOUT
    )
    assert landing.billing_delivery(D).unread == ()  # type: ignore[union-attr]


# ---------------------------------------------------------------- metadata is data


HOSTILE_NAMES = [
    "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "![img](http://evil.example/p.png)",
]


def billing_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    pd.DataFrame(rows, columns=list(BILLING_COLUMNS)).to_csv(out, index=False)
    return gzip.compress(out.getvalue().encode())


def billing_row(cid: str, name: str, mrr: str = "10.00") -> dict[str, str]:
    return {
        "customer_id": cid,
        "account_name": name,
        "signup_date": "2025-12-01",
        "plan": "pro",
        "seats": "2",
        "mrr": mrr,
        "cancelled_service": "0",
        "cancelled_at": "",
        "new_customer": "0",
        "reactivated_at": "",
        "support_calls": "0",
        "snapshot_date": D.isoformat(),
    }


def test_markup_is_escaped_and_account_names_stay_out_of_check_samples() -> None:
    rows = [billing_row(f"C{i:07d}", name, "-1.00") for i, name in enumerate(HOSTILE_NAMES)]
    rows.append(billing_row("C0000009", "line one\nline two | three", "-1.00"))
    parts = [("billing/dt=2026-01-06/part-00000.csv.gz", billing_csv(rows))]
    billing = parse_billing_day(parts, D)
    assert list(billing["account_name"])[:3] == HOSTILE_NAMES  # stored verbatim: it is data
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_asset_context(instance=instance, partition_key=D.isoformat())
        results = {r.check_name: r for r in raw_billing_results(context, billing, D, parts=parts)}
    sample = results["values_in_range"].metadata["negative_mrr_sample"].value
    assert "C0000000" in sample and "C0000009" in sample
    assert "account_name" not in sample
    for text in [*HOSTILE_NAMES, "line one"]:
        assert text not in sample

    table = markdown_table(pd.DataFrame({"v": [*HOSTILE_NAMES, "a\nb|c", "_em_ *b* `c` ~s~"]}))
    body = table.value.split("\n")
    assert len(body) == 2 + 5  # a newline in a cell does not break the table
    assert "<script>" not in table.value and "![img](" not in table.value
    assert "\\<script\\>" in table.value and "http\\://evil" in table.value
    assert escape_markdown("a\nb|c") == "a\\nb\\|c"
    assert escape_markdown("_em_ *b* `c` ~s~") == "\\_em\\_ \\*b\\* \\`c\\` \\~s\\~"


def test_a_rejected_days_details_are_plain_text() -> None:
    rejection = BillingRejected(
        "untypeable_values", "seats: 1 untypeable value(s), e.g. '<b>x</b>'"
    )
    [schema] = rejected_billing_results(rejection)
    assert isinstance(schema.metadata["details"], dg.TextMetadataValue)


# ---------------------------------------------------------------- ids are text


def test_a_control_character_in_a_customer_id_is_removed_not_a_new_customer(
    tmp_path: Path,
) -> None:
    moment = datetime(D.year, D.month, D.day, 10, tzinfo=UTC)
    lines = [
        event("w-1", "C0001378", moment),
        event("w-2", "C0001378\u0000", moment + timedelta(minutes=1)),  # json: \\u0000
        event("w-3\u0007", "C0001378\u001f\u0085", moment + timedelta(minutes=2)),
    ]
    assert b"\\u0000" in lines[1]
    put(tmp_path, key_at(moment), gzip.compress(b"\n".join(lines)))
    _, result = normalise(zone(tmp_path))
    assert list(result.events["customer_id"]) == ["C0001378"] * 3
    assert list(result.events["event_id"]) == ["w-1", "w-2", "w-3"]
    assert len(sessionise(result.events)) == 1


# ---------------------------------------------------------------- through the asset


def test_the_day_reports_unread_files_and_objects_over_caps_in_checks_and_metadata(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    # 200 good lines: the one over-cap row is 0.5% of the lines, below the blocking share.
    put(landing, key_at(datetime(D.year, D.month, D.day, 3, tzinfo=UTC)), good_object(3, 200))
    over = key_at(datetime(D.year, D.month, D.day, 4, tzinfo=UTC), "bomb")
    put(landing, over, bomb(b"\n", 16 * MiB, 1))
    put(landing, "clickstream/2026/01/06/05/<img src=x>.txt", b"x")
    put(landing, "clickstream/readme.txt", b"x")
    defs = local_definitions(tmp_path, landing, SMALL_SETTINGS)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [defs.resolve_assets_def("raw_clickstream")],
            partition_key=D.isoformat(),
            instance=instance,
            raise_on_error=False,
        )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert result.success
    assert not checks["unread_landing_files"].passed
    assert checks["unread_landing_files"].severity == dg.AssetCheckSeverity.WARN
    assert checks["unread_landing_files"].metadata["unread_by_reason"].value == {
        UNRECOGNISED_NAME: 1,
        OUTSIDE_LAYOUT: 1,
    }
    assert "\\<img src=x\\>" in checks["unread_landing_files"].metadata["unread_files"].value
    assert not checks["objects_within_caps"].passed
    [detail] = checks["objects_within_caps"].metadata["objects_over_cap_detail"].value
    assert detail["object_key"] == over and detail["cap"] == "lines"
    [materialization] = result.asset_materializations_for_node("raw_clickstream")
    assert materialization.metadata["unread_landing_files"].value == 2
    assert materialization.metadata["valid"].value == 200
    assert materialization.metadata["quarantined_object_over_cap"].value == 1


def test_listing_the_whole_local_store_stays_inside_its_root(tmp_path: Path) -> None:
    """The empty prefix lists the root itself, never its parent's other folders."""
    root = tmp_path / "landing"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "sibling.txt").write_text("not in the landing zone")
    assert [o.key for o in LocalObjectStore(str(root)).list("")] == ["billing/_SUCCESS"]
