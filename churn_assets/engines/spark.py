"""The Spark engine: the clickstream work as Spark SQL, through dagster-pyspark.

Selected by configuration only (``CHURN_ENGINE=spark``, ``CHURN_SPARK_MASTER``): assets call
the :class:`~churn_assets.engines.base.ClickstreamEngine` methods and never know which engine
runs them. Every output equals the embedded engine's (``churn_assets.core.clickstream`` and
``churn_assets.core.sessions`` define the rules): same rows, column order and dtypes.

How the rules map onto Spark (no Python function per row anywhere):

* **Objects and lines.** Every object is first tested by a pandas UDF over ``binaryFile``
  rows (one Python call per *object*, a few objects per Arrow batch) with the embedded
  engine's own rule (``core.bounded_read.object_problem``: streamed decompression under the
  caps of ``ObjectLimits``, holding one chunk). An object that is not gzip (or has zero
  bytes) or goes over a cap becomes one ``line_no`` 0 row (``unreadable_object`` with its
  first bytes, ``object_over_cap`` with the cap's note), and one listed larger than the byte
  cap is not read at all; so a gzip bomb or a 2 GB line never reaches Hadoop. The others are
  read by ``spark.read.text`` with ``lineSep="\\n"``. One trailing ``\\r`` per line is
  stripped. Gzip is not splittable, so the lines of one object are
  consecutive rows of one input partition, in order: its line number is its
  ``monotonically_increasing_id`` minus the object's first one, plus 1 (checked on every
  run: no gaps, no interleaving).
* **Strict JSON.** A line is JSON when it is valid UTF-8 (``is_valid_utf8``), has no lone
  surrogate escape, ``[`` + line + ``]`` parses with ``try_parse_json`` (Jackson, strict:
  no NaN, comments, single quotes, trailing commas or control characters) and
  ``{"x":`` + line + ``}`` tokenises (``json_object_keys``). Jackson ignores anything after
  the first value; a line ``V T`` with non-blank ``T`` cannot pass both wrappings (the first
  needs ``T`` to start with ``,`` or ``]``, the second with ``,`` or ``}``, and after a comma
  one needs a value and the other a key followed by ``:``), so together they accept exactly
  one JSON value with surrounding whitespace.
* **Fields** come from the variant of the first wrapping (``variant_get``), which tells a key
  present with null from an absent key; a non-string id is its JSON text.
* **Windows.** The arrival-side numbers (arrival day, first event day whose window contains
  the arrival) are computed per object in Python with exact integers; the SQL compares days.
* **Dedup, sessions, activity**: window functions (``row_number``, ``lag``, running ``sum``),
  ``collect_list`` + ``aggregate`` where the embedded engine's floating-point summation
  order must be reproduced bit for bit.

Known differences, outside LANDING.md: when a JSON object has the same key twice, Spark keeps
the last value (DuckDB the first); a non-integer number used as an id or element is written
the Jackson way; customer ids are upper-cased with Java's full Unicode mapping (``ß`` becomes
``SS``, DuckDB keeps ``ß``); a line nested more than 1,000 levels deep or a single value
above 16 MiB is ``invalid_json``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from dagster_pyspark import PySparkResource
from pydantic import Field, PrivateAttr
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from churn_assets.core import bounded_read
from churn_assets.core.bounded_read import (
    DEFAULT_LIMITS,
    OVER_CAP,
    UNREADABLE,
    ObjectLimits,
    listed_over_cap,
    object_problem,
)
from churn_assets.core.clickstream import (
    ACCOUNTING_KEYS,
    APP_EVENT_TYPES,
    EVENT_COLUMNS,
    MAX_ABS_EPOCH_MS,
    QUARANTINE_COLUMNS,
    QUARANTINE_REASONS,
    WEB_EVENT_TYPES,
    ClickstreamResult,
    empty_events,
    empty_quarantine,
)
from churn_assets.core.sessions import (
    ACTIVITY_COLUMNS,
    SESSION_COLUMNS,
    empty_activity,
    empty_sessions,
)
from churn_assets.engines.base import ClickstreamEngine
from churn_assets.resources.landing import ClickstreamObject, LandingZone

SUPPORTED_JAVA = (17, 21)
"""Java major versions Spark 4 runs on."""

DEFAULT_SPARK_CONFIG: dict[str, str] = {
    "spark.app.name": "churn_assets",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "ERROR",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.variant.allowDuplicateKeys": "true",
}
"""Laptop-sized defaults; anything can be overridden through ``spark_config``."""

LOOPBACK_CONFIG: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.memory": "2g",
}
"""Added for ``local[...]`` and loopback standalone masters: nothing listens beyond this
machine, and the executors run the driver's own Python."""

# Session settings the queries rely on; set on every call (runtime SQL settings), so that a
# session created elsewhere still gives the same answers.
_RUNTIME_CONFIG: dict[str, str] = {
    "spark.sql.variant.allowDuplicateKeys": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # A day is a few hundred explicit object paths: check them on the driver rather than
    # with a Spark job per read.
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    "spark.sql.parser.escapedStringLiterals": "false",  # the SQL's regexes are escaped
}

_DAY_MS = 86_400_000
_OBJECTS_PER_BATCH = 4
"""Objects per Arrow batch of the pre-pass that tests them under the caps."""
_DAY_NS = 86_400_000_000_000
_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


class SparkUnavailable(RuntimeError):
    """The Spark engine was selected but cannot start here (no supported Java, ...)."""


# ------------------------------------------------------------------------------ Java


def _java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


@functools.cache
def java_problem() -> str | None:
    """Why Spark cannot start on this machine (a sentence for people), or None when it can."""
    java = _java_executable()
    advice = (
        "Install one with `make java` (Debian/Ubuntu: apt-get install "
        "openjdk-17-jre-headless) or point JAVA_HOME at one; or leave CHURN_ENGINE unset to "
        "use the embedded engine, which needs no Java."
    )
    if java is None:
        return f"The Spark engine needs Java 17 or 21 and none was found. {advice}"
    try:
        probe = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"The Spark engine needs Java 17 or 21; {java} does not run ({error}). {advice}"
    match = re.search(r'version "(\d+)(?:\.(\d+))?', probe.stderr + probe.stdout)
    if match is None:
        return f"The Spark engine needs Java 17 or 21; cannot tell the version of {java}. {advice}"
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major not in SUPPORTED_JAVA:
        return f"The Spark engine needs Java 17 or 21; {java} is Java {major}. {advice}"
    return None


def require_java() -> None:
    """Raise :class:`SparkUnavailable` with a readable message when Java is missing."""
    problem = java_problem()
    if problem is not None:
        raise SparkUnavailable(problem)


# ------------------------------------------------------------------------------ resources


def is_loopback_master(master: str) -> bool:
    """``local``/``local[...]``, or a standalone master on this machine."""
    return master.startswith("local") or bool(
        re.match(r"^spark://(127\.0\.0\.1|localhost)(:\d+)?$", master)
    )


class SparkSessionResource(PySparkResource):
    """A ``PySparkResource`` whose session lives exactly as long as one run.

    ``setup_for_execution`` starts the session (or joins one already running in this process
    on the same master, which it then leaves running) and ``teardown_after_execution`` stops
    the session it started: one session per run, never one per asset. Used outside a run
    (tests, benchmarks), the session is joined or started on first use and left running.
    """

    master: str = Field(
        default="local[2]",
        description="Spark master URL: local[*], local[2], spark://host:7077, k8s://…, yarn.",
    )
    spark_config: dict[str, Any] = Field(
        default_factory=dict, description="Spark settings added to (and overriding) defaults."
    )
    _owned: bool = PrivateAttr(default=False)

    def session_config(self) -> dict[str, str]:
        config = dict(DEFAULT_SPARK_CONFIG)
        if is_loopback_master(self.master):
            config |= LOOPBACK_CONFIG
        config |= {str(k): str(v) for k, v in self.spark_config.items()}
        config["spark.master"] = self.master
        return config

    def _start(self) -> None:
        require_java()
        from pyspark import SparkContext

        running = SparkContext._active_spark_context
        if running is not None and running.master != self.master:
            raise SparkUnavailable(
                f"A Spark session on {running.master} is already running in this process; "
                f"stop it before starting one on {self.master}."
            )
        if running is None and is_loopback_master(self.master):
            # Executors on this machine run this interpreter (PySpark reads only the variable).
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder
        for key, value in self.session_config().items():
            builder = builder.config(key, value)
        self._spark_session = builder.getOrCreate()
        self._owned = running is None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._start()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        session, self._spark_session = self._spark_session, None
        if session is not None and self._owned:
            session.stop()
        self._owned = False

    @property
    def spark_session(self) -> SparkSession:
        if self._spark_session is None or self._spark_session.sparkContext._jsc is None:
            self._start()
        return self._spark_session


def spark_resource(master: Any = "local[2]", config: Mapping[str, Any] | None = None) -> Any:
    """The Spark session resource for ``master`` (a string or a ``dg.EnvVar``).

    ``local[*]``/``local[2]`` on a laptop, ``spark://host:7077`` for a standalone cluster;
    ``config`` adds or overrides Spark settings (e.g. ``spark.jars.packages`` for S3).
    Fails early, with a readable message, when no supported Java is installed.
    """
    require_java()
    return SparkSessionResource(master=master, spark_config=dict(config or {}))


# ------------------------------------------------------------------------------ SQL pieces


def _java_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


# Python's str.isspace() characters: the customer-id strip set (as the embedded engine).
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
_WS = _java_class(_WHITESPACE)
_STRIP_RE = f"^{_WS}+|{_WS}+$"
_CONTROL_RE = "[\\x{0}-\\x{1f}\\x{7f}-\\x{9f}]"
_SUBSCRIBE_RE = f"^{_WS}*[Ss][Uu][Bb][Ss][Cc][Rr][Ii][Bb][Ee]"
_TS_RE = (
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))\z"
)
_TS_PARTS = ",".join(f"${i}" for i in range(1, 12))
# Escaped backslashes and valid surrogate pairs removed, any \uD800-\uDFFF left is lone.
_ESCAPES_RE = r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_RE = r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
_OBJECT_START_RE = r"^[ \t\n\r]*\{"
_PLAIN_TYPES = ("STRING", "BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT")
_INT_TYPES = ("TINYINT", "SMALLINT", "INT", "BIGINT")


def _floor_div(name: str, divisor: int) -> Column:
    """Exact floor division of the BIGINT column ``name`` by a positive constant."""
    return F.expr(f"({name} - pmod({name}, {divisor})) div {divisor}")


def _q(text: str) -> str:
    """A Spark SQL string literal of ``text`` (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


def _lone_surrogate(text: str) -> str:
    """SQL: ``text`` has a \ud800-\udfff escape that is not half of a surrogate pair."""
    return (
        f"(CASE WHEN instr({text}, {_q(chr(92) + 'u')}) > 0"
        f" THEN regexp_replace({text}, {_q(_ESCAPES_RE)}, '') RLIKE {_q(_LONE_RE)}"
        " ELSE false END)"
    )


def _wrapped(text: str) -> str:
    """SQL: the variant of ``[text]``, NULL unless Jackson (strict) parses it."""
    return f"try_parse_json(concat('[', {text}, ']'))"


def _single_value(text: str, wrapped: str) -> str:
    """SQL: ``text`` is exactly one strict JSON value (``wrapped`` = ``_wrapped(text)``)."""
    tail_ok = f"json_object_keys(concat('{{\"x\":', {text}, '}}')) IS NOT NULL"
    return f"coalesce({wrapped} IS NOT NULL AND {tail_ok} AND NOT {_lone_surrogate(text)}, false)"


def _jtext(value: str, source: str, path: str) -> str:
    """SQL: the text of the JSON value (a variant column) as the embedded engine reads it:
    a string unescaped, null or absent -> NULL, any other value its JSON text (taken from
    the JSON text ``source`` at ``path``)."""
    return (
        f"CASE WHEN {value} IS NULL OR is_variant_null({value}) THEN CAST(NULL AS STRING)"
        f" WHEN schema_of_variant({value}) IN {_in(_PLAIN_TYPES)}"
        f" THEN try_variant_get({value}, '$', 'string')"
        f" ELSE get_json_object({source}, {_q(path)}) END"
    )


def _no_controls(text: str) -> str:
    """SQL: ``text`` without control characters (Unicode Cc), as the embedded engine."""
    return f"regexp_replace({text}, {_q(_CONTROL_RE)}, '')"


def _case_map(text: str, mapping: Mapping[str, str]) -> str:
    whens = " ".join(f"WHEN {_q(k)} THEN {_q(v)}" for k, v in mapping.items())
    return f"CASE {text} {whens} END"


_DAYS_FROM_CIVIL = (
    # days since 1970-01-01 of the proleptic Gregorian date (t0, t1, t2) (H. Hinnant)
    "(era * 146097 + yoe * 365 + (yoe div 4) - (yoe div 100)"
    " + ((CASE WHEN t1 > 2 THEN t1 - 3 ELSE t1 + 9 END) * 153 + 2) div 5 + t2 - 1 - 719468)"
)
_DAYS_IN_MONTH = (
    "CASE WHEN t1 = 2 THEN CASE WHEN (pmod(t0, 4) = 0 AND pmod(t0, 100) <> 0)"
    " OR pmod(t0, 400) = 0 THEN 29 ELSE 28 END ELSE 31 - pmod(pmod(t1 - 1, 7), 2) END"
)
_LINE_COLUMNS = "kid, krank, batch, arr_ns, a_day, lo_day, p_day, mono, raw, problem"


def _classify_sql(lines: str) -> str:
    """The per-line query (the embedded engine's ``_classify_sql`` and dedup, rule for rule).

    ``lines``: a view with kid, krank (the object's index and rank by key), batch (which
    partition's normalisation the row belongs to), arr_ns, a_day, lo_day (arrival numbers),
    p_day (the partition: a column, so the generated code is the same for every day), mono
    (row id; NULL for an object that was not read), raw, problem (why it was not read).
    Built as stages whose columns are reused, so that the generated code stays small.
    """
    keep = _LINE_COLUMNS + ", txt, is_json"
    paths = {
        "v_id": "event_id",
        "v_event": "event",
        "v_ts": "ts",
        "v_type": "event_type",
        "v_ms": "timestamp_ms",
        "v_web_cid": "customerId",
        "v_props": "props",
        "v_app_cid": "user.customer_id",
        "v_page": "context.page.path",
        "v_element": "context.element.id",
    }
    variants = ", ".join(f"variant_get(w, '$[0].{p}') AS {n}" for n, p in paths.items())
    keep_v = keep + ", " + ", ".join(paths)
    fields = "event_id, type_text, ts_text, ms_kind, cid_text, props_kind, app_page, app_element"
    sub = (
        "CASE WHEN ts_parts[{i}] = '' THEN CAST(0 AS BIGINT)"
        " ELSE try_cast(ts_parts[{j}] AS BIGINT) END"
    )
    reasons = _in(QUARANTINE_REASONS)
    web_prop = (
        "CASE WHEN v_web_{n} IS NULL OR is_variant_null(v_web_{n}) THEN CAST(NULL AS STRING)"
        f" WHEN schema_of_variant(v_web_{{n}}) IN {_in(_PLAIN_TYPES)}"
        " THEN try_variant_get(v_web_{n}, '$', 'string')"
        " WHEN props_kind LIKE 'OBJECT%' THEN get_json_object(txt, '$.props.{n}')"
        " ELSE get_json_object(props_text, '$.{n}') END"
    )
    return f"""
    WITH s1 AS (
        SELECT {_LINE_COLUMNS}, txt,
               CASE WHEN mono IS NOT NULL AND is_valid_utf8(txt) THEN {_wrapped("txt")}
               END AS wrapped
        FROM (SELECT {_LINE_COLUMNS}, CAST(raw AS STRING) AS txt FROM {lines})
    ),
    s2 AS (
        SELECT {_LINE_COLUMNS}, txt, wrapped, {_single_value("txt", "wrapped")} AS is_json
        FROM s1
    ),
    s3 AS (  -- every value the rules look at, as a variant (NULL: absent, or not JSON)
        SELECT {keep}, {variants}
        FROM (SELECT {keep}, CASE WHEN is_json THEN wrapped END AS w FROM s2)
    ),
    s4 AS (
        SELECT {keep_v},
               CASE WHEN NOT is_json THEN NULL
                    WHEN (v_id IS NOT NULL AND v_event IS NOT NULL AND v_ts IS NOT NULL)
                         AND NOT (v_type IS NOT NULL AND v_ms IS NOT NULL) THEN 'web'
                    WHEN (v_id IS NOT NULL AND v_type IS NOT NULL AND v_ms IS NOT NULL)
                         AND NOT (v_event IS NOT NULL AND v_ts IS NOT NULL) THEN 'app'
               END AS source
        FROM s3
    ),
    s5 AS (
        SELECT {keep_v}, source,
               {_no_controls(_jtext("v_id", "txt", "$.event_id"))} AS event_id,
               CASE source WHEN 'web' THEN try_variant_get(v_event, '$', 'string')
                           WHEN 'app' THEN try_variant_get(v_type, '$', 'string') END
                 AS type_text,
               CASE WHEN source = 'web' THEN try_variant_get(v_ts, '$', 'string') END AS ts_text,
               CASE WHEN source = 'app' THEN schema_of_variant(v_ms) END AS ms_kind,
               {
        _no_controls(f'''CASE source
                 WHEN 'web' THEN {_jtext("v_web_cid", "txt", "$.customerId")}
                 WHEN 'app' THEN {_jtext("v_app_cid", "txt", "$.user.customer_id")} END''')
    }
                 AS cid_text,
               CASE WHEN source = 'web' THEN schema_of_variant(v_props) END AS props_kind,
               CASE WHEN source = 'app' THEN {_jtext("v_page", "txt", "$.context.page.path")}
               END AS app_page,
               CASE WHEN source = 'app'
                    THEN {_jtext("v_element", "txt", "$.context.element.id")} END AS app_element
        FROM s4
    ),
    s6 AS (
        SELECT {keep_v}, source, {fields},
               CASE WHEN props_kind = 'STRING' THEN try_variant_get(v_props, '$', 'string')
               END AS props_text,
               regexp_replace(ts_text, {_q(_TS_RE)}, {_q(_TS_PARTS)}) AS ts_fields,
               CASE WHEN ms_kind IN {_in(_INT_TYPES)} THEN try_variant_get(v_ms, '$', 'bigint')
               END AS ms_int,
               CASE WHEN ms_kind IN ('DOUBLE', 'FLOAT') OR ms_kind LIKE 'DECIMAL%'
                    THEN try_variant_get(v_ms, '$', 'double') END AS ms_dbl,
               nullif(upper(regexp_replace(cid_text, {_q(_STRIP_RE)}, '')), '') AS customer_id
        FROM s5
    ),
    s6b AS (  -- a ts matched the pattern iff the replacement changed it (no - or : is left)
        SELECT *, CASE WHEN ts_fields <> ts_text THEN split(ts_fields, ',') END AS ts_parts
        FROM s6
    ),
    s7 AS (
        SELECT {keep_v}, source, {fields}, props_text, ms_int, ms_dbl, customer_id,
               CASE WHEN props_text RLIKE {_q(_OBJECT_START_RE)} THEN {_wrapped("props_text")}
               END AS pw0,
               try_cast(ts_parts[0] AS BIGINT) AS t0, try_cast(ts_parts[1] AS BIGINT) AS t1,
               try_cast(ts_parts[2] AS BIGINT) AS t2, try_cast(ts_parts[3] AS BIGINT) AS t3,
               try_cast(ts_parts[4] AS BIGINT) AS t4, try_cast(ts_parts[5] AS BIGINT) AS t5,
               CASE WHEN ts_parts[6] = '' THEN CAST(0 AS BIGINT)
                    ELSE try_cast(rpad(substr(ts_parts[6], 1, 3), 3, '0') AS BIGINT) END AS t_ms,
               {sub.format(i=7, j=9).replace("= ''", "<> ''")} AS t_oh,
               {sub.format(i=7, j=10).replace("= ''", "<> ''")} AS t_om,
               CASE WHEN ts_parts[8] = '-' THEN -1 ELSE 1 END AS t_sign
        FROM s6b
    ),
    s8 AS (
        SELECT *,
               CASE WHEN t0 - (CASE WHEN t1 <= 2 THEN 1 ELSE 0 END) >= 0
                    THEN (t0 - (CASE WHEN t1 <= 2 THEN 1 ELSE 0 END)) div 400
                    ELSE (t0 - (CASE WHEN t1 <= 2 THEN 1 ELSE 0 END) - 399) div 400 END AS era
        FROM s7
    ),
    s9 AS (
        SELECT *, t0 - (CASE WHEN t1 <= 2 THEN 1 ELSE 0 END) - era * 400 AS yoe FROM s8
    ),
    s10 AS (
        SELECT {keep_v}, source, {fields}, props_text, customer_id,
               CASE source
                 WHEN 'web' THEN
                   CASE WHEN t3 <= 23 AND t4 <= 59 AND t5 <= 59 AND t_oh <= 23 AND t_om <= 59
                             AND t1 BETWEEN 1 AND 12 AND t2 >= 1 AND t2 <= {_DAYS_IN_MONTH}
                        THEN {_DAYS_FROM_CIVIL} * {_DAY_MS} + t3 * 3600000 + t4 * 60000
                             + t5 * 1000 + t_ms - t_sign * (t_oh * 60 + t_om) * 60000
                   END
                 WHEN 'app' THEN
                   coalesce(ms_int,
                            -- nested: the cast to BIGINT only runs on values in range (ANSI)
                            CASE WHEN abs(ms_dbl) <= {MAX_ABS_EPOCH_MS}
                                 THEN CASE WHEN ms_dbl = CAST(CAST(ms_dbl AS BIGINT) AS DOUBLE)
                                           THEN CAST(ms_dbl AS BIGINT) END END)
               END AS raw_ms,
               CASE WHEN {_single_value("props_text", "pw0")} THEN pw0 END AS pw
        FROM s9
    ),
    s11 AS (
        SELECT {keep}, source, {fields}, props_text, customer_id, raw_ms,
               CASE WHEN props_kind LIKE 'OBJECT%' THEN variant_get(v_props, '$.page')
                    ELSE variant_get(pw, '$[0].page') END AS v_web_page,
               CASE WHEN props_kind LIKE 'OBJECT%' THEN variant_get(v_props, '$.element')
                    ELSE variant_get(pw, '$[0].element') END AS v_web_element
        FROM s10
    ),
    s12 AS (
        SELECT {_LINE_COLUMNS}, is_json, source, customer_id, event_id,
               CASE WHEN raw_ms BETWEEN -{MAX_ABS_EPOCH_MS} AND {MAX_ABS_EPOCH_MS} THEN raw_ms
               END AS ms,
               CASE source WHEN 'web' THEN {_case_map("type_text", WEB_EVENT_TYPES)}
                           WHEN 'app' THEN {_case_map("type_text", APP_EVENT_TYPES)}
               END AS event_type,
               CASE WHEN source = 'web' THEN {web_prop.format(n="page")} ELSE app_page END
                 AS page,
               CASE WHEN source = 'web' THEN {web_prop.format(n="element")} ELSE app_element END
                 AS element
        FROM s11
    ),
    s13 AS (
        SELECT *, (ms - pmod(ms, {_DAY_MS})) div {_DAY_MS} AS e_day,
               CASE WHEN mono IS NULL THEN coalesce(problem, 'unreadable_object')
                    WHEN NOT is_json THEN 'invalid_json'
                    WHEN source IS NULL THEN 'unknown_shape'
                    WHEN ms IS NULL THEN 'bad_timestamp'
                    WHEN event_type IS NULL THEN 'unknown_event_type'
               END AS bad
        FROM s12
    ),
    s14 AS (
        SELECT *,
               CASE
                 WHEN bad IS NOT NULL THEN CASE WHEN a_day = p_day THEN bad ELSE 'other_date' END
                 WHEN e_day = p_day AND lo_day <= p_day AND p_day <= a_day THEN
                   CASE WHEN customer_id IS NULL THEN 'anonymous' ELSE 'attributed' END
                 WHEN e_day <> p_day AND lo_day <= e_day AND e_day <= a_day THEN 'other_date'
                 WHEN a_day = p_day THEN CASE WHEN e_day < a_day THEN 'late' ELSE 'future' END
                 ELSE 'other_date'
               END AS cat0
        FROM s13
    ),
    s15 AS (  -- dedup: the first delivery of an attributed event_id; the others are alone
        SELECT *,
               CASE WHEN cat0 = 'attributed' THEN
                 CASE WHEN event_id IS NULL OR row_number() OVER (
                        PARTITION BY batch, cat0 = 'attributed' AND event_id IS NOT NULL,
                                     CASE WHEN cat0 = 'attributed' AND event_id IS NOT NULL
                                          THEN event_id
                                          ELSE concat_ws('#', CAST(kid AS STRING),
                                                         CAST(mono AS STRING)) END
                        ORDER BY arr_ns, krank, mono) = 1
                      THEN 'valid' ELSE 'duplicate' END
                 ELSE cat0 END AS cat
        FROM s14
    )
    SELECT kid, batch, mono, cat,
           CASE WHEN cat IN ('valid', 'anonymous') OR cat IN {reasons} THEN event_id END
             AS event_id,
           CASE WHEN cat IN ('valid', 'anonymous') OR cat IN {reasons} THEN ms END AS ms,
           CASE WHEN cat IN ('valid', 'anonymous') THEN customer_id END AS customer_id,
           CASE WHEN cat IN ('valid', 'anonymous') THEN event_type END AS event_type,
           CASE WHEN cat IN ('valid', 'anonymous') THEN page END AS page,
           CASE WHEN cat IN ('valid', 'anonymous') THEN element END AS element,
           CASE WHEN cat IN ('valid', 'anonymous')
                THEN coalesce(element RLIKE {_q(_SUBSCRIBE_RE)}, false) END AS is_subscribe,
           CASE WHEN cat IN ('valid', 'anonymous') THEN source END AS source,
           CASE WHEN cat IN {reasons} THEN raw END AS raw_q
    FROM s15
    """


# ------------------------------------------------------------------------------ I/O helpers


def _problem_udf(limits: ObjectLimits) -> Any:
    """Pandas UDF: why each object would not be read (``bounded_read.object_problem``, the
    embedded engine's own rule), as a struct (problem, kept), NULL for a readable object.

    ``bounded_read`` is shipped by value (it needs only numpy), so executors need not have
    this package installed. Each object is decompressed as a stream under the caps: an
    executor holds the compressed objects of one Arrow batch plus one chunk.
    """
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(bounded_read)

    @F.pandas_udf("problem string, kept binary")  # type: ignore[call-overload]
    def problem(content: pd.Series) -> pd.DataFrame:
        found = [object_problem(bytes(raw), limits) for raw in content]
        return pd.DataFrame(
            {
                "problem": [f[0] if f else None for f in found],
                "kept": [f[1] if f else None for f in found],
            }
        )

    return problem


def spark_uri(uri: str, s3_scheme: str = "s3a") -> str:
    """The URI Spark reads a landing object at: ``s3://`` -> ``s3a://`` (or ``s3_scheme``),
    a local path -> ``file://``; glob characters escaped."""
    if uri.startswith("s3://"):
        out = f"{s3_scheme}://{uri[5:]}"
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri):
        out = uri
    else:
        out = "file://" + os.path.abspath(uri)
    return _GLOB_CHARS.sub(r"\\\1", out)


def _hadoop_paths(spark: SparkSession, uris: Sequence[str]) -> list[Any]:
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    out = []
    for uri in uris:
        path = jvm.org.apache.hadoop.fs.Path(_GLOB_CHARS.sub(r"\1", uri.replace("\\", "")))
        out.append(path.getFileSystem(conf).makeQualified(path))
    return out


def _qualified(spark: SparkSession, uris: Sequence[str]) -> list[str]:
    """How Spark's ``input_file_name()`` spells each URI (Hadoop's qualified path)."""
    return [path.toUri().toString() for path in _hadoop_paths(spark, uris)]


SessionSource = SparkSession | Callable[[], SparkSession]
"""A session, or how to get one (so that empty inputs never start Spark)."""


def prepare_session(source: SessionSource) -> SparkSession:
    """The session, with the runtime SQL settings the engine's queries rely on."""
    spark = source if isinstance(source, SparkSession) else source()
    for key, value in _RUNTIME_CONFIG.items():
        spark.conf.set(key, value)
    return spark


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(
        pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("M8[ns]")).tz_localize("UTC"),
        dtype="datetime64[ns, UTC]",
    )


def _text(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _ints(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype="int64")


def _maybe_ms_to_utc(column: pa.ChunkedArray) -> pd.Series:
    """Nullable epoch ms -> datetime64[ns, UTC] with NaT."""
    ns = pc.multiply(column.cast(pa.int64()), pa.scalar(1_000_000, pa.int64()))
    return pd.Series(ns.cast(pa.timestamp("ns", tz="UTC")).to_pandas(), dtype="datetime64[ns, UTC]")


# ------------------------------------------------------------------------------ normalise

LocatedObject = tuple[str, str, datetime, int]
"""``(uri, object_key, arrival_time, size)``: where an object is (a local path, ``file://``,
``s3://`` or any URI Hadoop reads), its landing key, arrival time and length in bytes."""

NormaliseCall = tuple[Sequence[LocatedObject], date, timedelta]
"""The arguments of one partition's normalisation: objects, partition, lateness."""


def normalise_objects(
    spark: SessionSource,
    objects: Sequence[LocatedObject],
    partition: date,
    lateness: timedelta = timedelta(hours=2),
    s3_scheme: str = "s3a",
    limits: ObjectLimits = DEFAULT_LIMITS,
) -> ClickstreamResult:
    """``normalise_clickstream`` of one partition's objects on Spark (see ``normalise_many``)."""
    return normalise_many(spark, [(objects, partition, lateness)], s3_scheme, limits)[0]


def normalise_many(
    spark: SessionSource,
    calls: Sequence[NormaliseCall],
    s3_scheme: str = "s3a",
    limits: ObjectLimits = DEFAULT_LIMITS,
) -> list[ClickstreamResult]:
    """``normalise_clickstream`` of several partitions at once, each exactly as if alone.

    One Spark job classifies every line and deduplicates (one shuffle); an object read by
    several partitions is read once. The driver only counts the categories, numbers the
    lines and puts the rows in the contract's order. Before it, a pre-pass tests every
    object with the embedded engine's rule (``bounded_read.object_problem``: not gzip, or
    over a cap of ``limits``); those objects are not read natively but become the same one
    row as in the embedded engine.
    """
    rows: list[tuple] = []
    keys: list[str] = []
    arrivals: list[int] = []
    batch_of: list[int] = []
    sizes: dict[str, int] = {}
    for batch, (objects, partition, lateness) in enumerate(calls):
        if lateness < timedelta(0):
            raise ValueError("lateness must not be negative")
        if isinstance(partition, datetime):
            partition = partition.date()
        if len({obj[1] for obj in objects}) != len(objects):
            raise ValueError("object keys must be unique")
        lateness_ns = lateness // timedelta(microseconds=1) * 1000
        p_day = (partition - date(1970, 1, 1)).days
        for uri, key, arrival, size in objects:
            stamp = pd.Timestamp(arrival)
            if stamp.tzinfo is None:
                raise ValueError(f"arrival_time of {key!r} must be timezone-aware (UTC)")
            arr = int(stamp.tz_convert("UTC").value)
            location = spark_uri(uri, s3_scheme)
            if not location.endswith(".gz"):  # Hadoop picks the codec from the name
                raise ValueError(f"objects must be named *.gz for Spark to read them: {uri}")
            sizes[location] = size
            # Exact integers: lo_day is the first event day whose window holds this arrival.
            rows.append((location, len(keys), batch, arr, arr // _DAY_NS))
            rows[-1] += ((arr - lateness_ns) // _DAY_NS, p_day)
            keys.append(key)
            arrivals.append(arr)
            batch_of.append(batch)
    if not rows:
        return [_empty_result() for _ in calls]
    spark = prepare_session(spark)
    uris = list(sizes)
    paths = dict(zip(uris, _qualified(spark, uris), strict=True))
    key_array = np.asarray(keys, dtype=object)
    rank = np.empty(len(keys), dtype="int64")
    rank[np.argsort(key_array.astype(str), kind="stable")] = np.arange(len(keys))
    objects_df = spark.createDataFrame(
        [(paths[r[0]], r[1], int(rank[r[1]]), *r[2:]) for r in rows],
        "path string, kid long, krank long, batch long, arr_ns long, a_day long, lo_day long,"
        " p_day long",
    )

    # Objects the embedded engine would not read (not gzip, or over a cap) are found first,
    # by its own rule, and left out of the native read: Hadoop would decompress a gzip bomb
    # or hold a 2 GB line whole. A zero-byte object is unreadable (Hadoop reads no lines);
    # one listed larger than the byte cap is not read at all.
    not_read: dict[str, tuple[str, bytes]] = {}
    for uri, size in sizes.items():
        note = listed_over_cap(size, limits)
        if note is not None:
            not_read[paths[uri]] = (OVER_CAP, note)
        elif size == 0:
            not_read[paths[uri]] = (UNREADABLE, b"")
    not_read |= _object_problems(spark, [u for u in uris if paths[u] not in not_read], limits)
    if set(not_read) - set(paths.values()):  # pragma: no cover - an unforeseen spelling
        raise AssertionError(f"unexpected object paths: {sorted(not_read)[:3]}")
    table = _classified_lines(spark, uris, paths, objects_df, not_read)
    kid_unreadable = np.asarray(
        [not_read.get(paths[r[0]], ("",))[0] == UNREADABLE for r in rows], dtype=bool
    )
    batch_array = np.asarray(batch_of, dtype="int64")
    objects_info = (key_array, rank, np.asarray(arrivals, dtype="int64"))
    per_batch = np.asarray(table["batch"].to_numpy(), dtype="int64")
    order = np.argsort(per_batch, kind="stable")
    bounds = np.searchsorted(per_batch[order], np.arange(len(calls) + 1))
    return [
        _assemble(
            table.take(pa.array(order[bounds[b] : bounds[b + 1]])),
            objects_info,
            int(kid_unreadable[batch_array == b].sum()),
        )
        for b in range(len(calls))
    ]


def _empty_result() -> ClickstreamResult:
    return ClickstreamResult(empty_events(), empty_quarantine(), dict.fromkeys(ACCOUNTING_KEYS, 0))


def _object_problems(
    spark: SparkSession, uris: list[str], limits: ObjectLimits
) -> dict[str, tuple[str, bytes]]:
    """Path -> (reason, kept bytes) of each object the embedded engine would not read under
    ``limits`` (not gzip, or over a cap). Arrow batches of a few objects keep an executor's
    memory to a few compressed objects."""
    if not uris:
        return {}
    # binaryFile's own path column spells a path as Hadoop's Path.toString (input_file_name()
    # cannot be used: beside a Python UDF it names the wrong file).
    qualified = {path.toString(): path.toUri().toString() for path in _hadoop_paths(spark, uris)}
    previous = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(_OBJECTS_PER_BATCH))
    try:
        checked = (
            spark.read.format("binaryFile")
            .load(uris)
            .select("path", _problem_udf(limits)("content").alias("p"))
            .where(F.col("p.problem").isNotNull())
            .select("path", "p.problem", "p.kept")
            .collect()
        )
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", previous)
    return {qualified[r["path"]]: (r["problem"], bytes(r["kept"])) for r in checked}


def _classified_lines(
    spark: SparkSession,
    uris: list[str],
    paths: Mapping[str, str],
    objects_df: DataFrame,
    not_read: Mapping[str, tuple[str, bytes]],
) -> pa.Table:
    """One Spark job: every line read, classified and deduplicated (one shuffle); an object
    in ``not_read`` is one row (mono NULL) holding its reason and kept bytes."""
    parts: list[DataFrame] = []
    readable = [u for u in uris if paths[u] not in not_read]
    if readable:
        parts.append(
            spark.read.option("lineSep", "\n")
            .text(readable)
            .select(
                F.input_file_name().alias("path"),
                F.monotonically_increasing_id().alias("mono"),
                F.expr(
                    "CASE WHEN endswith(cast(value AS BINARY), X'0D') THEN"
                    " substring(cast(value AS BINARY), 1, octet_length(value) - 1)"
                    " ELSE cast(value AS BINARY) END"
                ).alias("raw"),
                F.lit(None).cast("string").alias("problem"),
            )
        )
    if not_read:
        parts.append(
            spark.createDataFrame(
                [(path, None, bytearray(raw), reason) for path, (reason, raw) in not_read.items()],
                "path string, mono long, raw binary, problem string",
            )
        )
    lines = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    view = f"churn_lines_{uuid.uuid4().hex}"
    lines.join(F.broadcast(objects_df), "path").drop("path").createOrReplaceTempView(view)
    try:
        return spark.sql(_classify_sql(view)).toArrow()
    finally:
        spark.catalog.dropTempView(view)


def _assemble(
    table: pa.Table, objects: tuple[np.ndarray, np.ndarray, np.ndarray], n_unreadable: int
) -> ClickstreamResult:
    """Counts, line numbers and row order of one partition's classified lines."""
    accounting = dict.fromkeys(ACCOUNTING_KEYS, 0)
    n = table.num_rows
    if n == 0:
        return _empty_result()
    kid = _ints(table["kid"])
    mono_col = table["mono"]
    unreadable = np.asarray(mono_col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    mono = np.asarray(mono_col.fill_null(0).to_numpy(), dtype="int64")
    cat = _text(table["cat"])

    # Line numbers: the lines of one object are consecutive rows of one input partition, so
    # line_no = row id - the object's first row id + 1 (checked: no gaps, no interleaving).
    n_keys = len(objects[0])
    readable = ~unreadable
    first = np.full(n_keys, np.iinfo("int64").max, dtype="int64")
    last = np.full(n_keys, -1, dtype="int64")
    np.minimum.at(first, kid[readable], mono[readable])
    np.maximum.at(last, kid[readable], mono[readable])
    per_key = np.bincount(kid[readable], minlength=n_keys)
    seen = per_key > 0
    if np.any(last[seen] - first[seen] + 1 != per_key[seen]):  # pragma: no cover
        raise AssertionError("the lines of an object are not consecutive rows of one partition")
    line_no = np.where(unreadable, 0, mono - first[kid] + 1)

    counts = pd.Series(cat).value_counts()
    accounting["lines_read"] = n
    for category in ("valid", "duplicate", "anonymous", "other_date"):
        accounting[category] = int(counts.get(category, 0))
    for reason in QUARANTINE_REASONS:
        accounting[f"quarantined_{reason}"] = int(counts.get(reason, 0))
    accounting["objects_read"] = int(np.unique(kid).size)
    accounting["objects_unreadable"] = n_unreadable

    ev = np.flatnonzero(np.isin(cat, ["valid", "anonymous"]))
    q = np.flatnonzero(np.isin(cat, list(QUARANTINE_REASONS)))
    return ClickstreamResult(
        events=_events_frame(table.take(pa.array(ev)), objects, line_no[ev]),
        quarantine=_quarantine_frame(table.take(pa.array(q)), objects, line_no[q]),
        accounting=accounting,
    )


def _sort_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes in code point order of the strings, NULL last."""
    codes = pd.factorize(values, sort=True)[0].astype("int64")
    return np.where(codes < 0, np.iinfo("int64").max, codes)


def _events_frame(
    table: pa.Table, objects: tuple[np.ndarray, np.ndarray, np.ndarray], line_no: np.ndarray
) -> pd.DataFrame:
    if table.num_rows == 0:
        return empty_events()
    keys, rank, arrivals = objects
    kid = _ints(table["kid"])
    ms = _ints(table["ms"])
    customer = _text(table["customer_id"])
    event_id = _text(table["event_id"])
    # customer_id (NULL last), event time, event_id (NULL last), object key, line number
    order = np.lexsort((line_no, rank[kid], _sort_codes(event_id), ms, _sort_codes(customer)))
    frame = pd.DataFrame(
        {
            "event_id": event_id[order],
            "customer_id": customer[order],
            "event_type": _text(table["event_type"])[order],
            "event_time": _utc(ms[order] * 1_000_000),
            "page": _text(table["page"])[order],
            "element": _text(table["element"])[order],
            "is_subscribe": np.asarray(table["is_subscribe"].to_numpy(), dtype=bool)[order],
            "source": _text(table["source"])[order],
            "object_key": keys[kid[order]],
            "line_no": line_no[order],
            "arrival_time": _utc(arrivals[kid[order]]),
        }
    )
    return frame[list(EVENT_COLUMNS)]


def _quarantine_frame(
    table: pa.Table, objects: tuple[np.ndarray, np.ndarray, np.ndarray], line_no: np.ndarray
) -> pd.DataFrame:
    if table.num_rows == 0:
        return empty_quarantine()
    keys, rank, arrivals = objects
    kid = _ints(table["kid"])
    order = np.lexsort((line_no, rank[kid], arrivals[kid]))  # arrival, object key, line
    raw = np.empty(table.num_rows, dtype=object)
    raw[:] = [bytes(b) for b in table["raw_q"].to_pylist()]
    frame = pd.DataFrame(
        {
            "object_key": keys[kid[order]],
            "line_no": line_no[order],
            "arrival_time": _utc(arrivals[kid[order]]),
            "reason": _text(table["cat"])[order],
            "event_id": _text(table["event_id"])[order],
            "event_time": _maybe_ms_to_utc(table["ms"].take(pa.array(order))),
            "raw_line": raw[order],
        }
    )
    return frame[list(QUARANTINE_COLUMNS)]


# ------------------------------------------------------------------------------ sessions


def _utc_ns(values: pd.Series) -> np.ndarray:
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")
    return np.asarray(index.asi8, dtype="int64")


def _objects(values: pd.Series) -> np.ndarray:
    out = values.to_numpy(dtype=object)
    out[pd.isna(out)] = None
    return out


def _split(table: pa.Table, n_batches: int) -> list[pa.Table]:
    """The rows of each batch (column ``batch``), in their order."""
    batch = np.asarray(table["batch"].to_numpy(), dtype="int64")
    order = np.argsort(batch, kind="stable")
    bounds = np.searchsorted(batch[order], np.arange(n_batches + 1))
    return [table.take(pa.array(order[bounds[b] : bounds[b + 1]])) for b in range(n_batches)]


def sessionise_frame(
    spark: SessionSource, events: pd.DataFrame, gap: timedelta = timedelta(minutes=30)
) -> pd.DataFrame:
    """``core.sessions.sessionise`` on Spark: same rows, order and dtypes."""
    return sessionise_many(spark, [(events, gap)])[0]


def sessionise_many(
    spark: SessionSource, calls: Sequence[tuple[pd.DataFrame, timedelta]]
) -> list[pd.DataFrame]:
    """``sessionise`` of several event tables in one Spark job, each as if alone."""
    frames = []
    for batch, (events, gap) in enumerate(calls):
        if gap < timedelta(0):
            raise ValueError("gap must not be negative")
        attributed = events.loc[events["customer_id"].notna()]
        frames.append(
            pd.DataFrame(
                {
                    "batch": np.full(len(attributed), batch, dtype="int64"),
                    "gap_ns": np.full(
                        len(attributed), gap // timedelta(microseconds=1) * 1000, dtype="int64"
                    ),
                    "customer_id": _objects(attributed["customer_id"]),
                    "event_id": _objects(attributed["event_id"]),
                    "event_type": _objects(attributed["event_type"]),
                    "ns": _utc_ns(attributed["event_time"]),
                    "is_subscribe": attributed["is_subscribe"].to_numpy(dtype=bool),
                }
            )
        )
    pdf = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if pdf.empty:
        return [empty_sessions() for _ in calls]
    spark = prepare_session(spark)
    schema = (
        "batch long, gap_ns long, customer_id string, event_id string, event_type string,"
        " ns long, is_subscribe boolean"
    )
    ev = spark.createDataFrame(pdf, schema).withColumn("day", _floor_div("ns", _DAY_NS))
    order = Window.partitionBy("batch", "customer_id").orderBy(
        "ns", F.col("event_id").asc_nulls_last()
    )
    prev_ns, prev_day = F.lag("ns").over(order), F.lag("day").over(order)
    new = (
        prev_ns.isNull() | (F.col("day") != prev_day) | ((F.col("ns") - prev_ns) > F.col("gap_ns"))
    )
    numbered = ev.withColumn("new", new.cast("bigint")).withColumn(
        "session_no",
        F.sum("new").over(order.rowsBetween(Window.unboundedPreceding, Window.currentRow)),
    )
    et, sub = F.col("event_type"), F.col("is_subscribe")

    def count_if(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0)).cast("bigint")

    sessions = numbered.groupBy("batch", "customer_id", "session_no").agg(
        F.min("ns").alias("start_ns"),
        F.max("ns").alias("end_ns"),
        F.count(F.lit(1)).alias("n_events"),
        count_if(et == "page_view").alias("n_page_views"),
        count_if(et == "hover").alias("n_hovers"),
        count_if(et == "click").alias("n_clicks"),
        count_if(et == "support_contact").alias("n_support_contacts"),
        count_if((et == "hover") & sub).alias("n_subscribe_hovers"),
        count_if((et == "click") & sub).alias("n_subscribe_clicks"),
    )
    counts = list(SESSION_COLUMNS[5:])
    table = sessions.select(
        "batch",
        "customer_id",
        F.concat(
            F.col("customer_id"), F.lit("-"), _floor_div("start_ns", 1_000_000).cast("string")
        ).alias("session_id"),
        "start_ns",
        "end_ns",
        ((F.col("end_ns") - F.col("start_ns")).cast("double") / F.lit(1e9)).alias("duration_s"),
        *counts,
    ).toArrow()
    return [_sessions_frame(part, counts) for part in _split(table, len(calls))]


def _sessions_frame(table: pa.Table, counts: list[str]) -> pd.DataFrame:
    if table.num_rows == 0:
        return empty_sessions()
    customer, start = _text(table["customer_id"]), _ints(table["start_ns"])
    order = np.lexsort((start, _sort_codes(customer)))  # customer_id, session_start
    frame = pd.DataFrame(
        {
            "customer_id": customer[order],
            "session_id": _text(table["session_id"])[order],
            "session_start": _utc(start[order]),
            "session_end": _utc(_ints(table["end_ns"])[order]),
            "duration_s": np.asarray(table["duration_s"].to_numpy(), dtype="float64")[order],
            **{c: _ints(table[c])[order] for c in counts},
        }
    )
    return frame[list(SESSION_COLUMNS)]


_ACTIVITY_SUMS: dict[str, str] = {
    "page_views_28d": "n_page_views",
    "hovers_28d": "n_hovers",
    "clicks_28d": "n_clicks",
    "subscribe_hovers_28d": "n_subscribe_hovers",
    "subscribe_clicks_28d": "n_subscribe_clicks",
    "support_contacts_28d": "n_support_contacts",
}
_RECENT_DAYS = 7


def customer_activity_frame(
    spark: SessionSource, sessions: pd.DataFrame, as_of: date, window_days: int = 28
) -> pd.DataFrame:
    """``core.sessions.customer_activity`` on Spark: same rows, order, dtypes and bits."""
    return customer_activity_many(spark, [(sessions, as_of, window_days)])[0]


def customer_activity_many(
    spark: SessionSource, calls: Sequence[tuple[pd.DataFrame, date, int]]
) -> list[pd.DataFrame]:
    """``customer_activity`` of several (sessions, as_of, window) in one Spark job."""
    frames = []
    for batch, (sessions, as_of, window_days) in enumerate(calls):
        if window_days < 1:
            raise ValueError("window_days must be at least 1")
        if sessions.empty:
            continue
        as_of_day = (pd.Timestamp(as_of).date() - date(1970, 1, 1)).days
        recent_days = min(_RECENT_DAYS, window_days)
        n = len(sessions)

        def column(value: int, rows: int = n) -> np.ndarray:
            return np.full(rows, value, dtype="int64")

        frames.append(
            pd.DataFrame(
                {
                    "batch": column(batch),
                    # rid keeps the input order: minutes are summed in that order, as
                    # np.bincount does, so that the floating-point result is the same.
                    "rid": np.arange(n, dtype="int64"),
                    "as_of_day": column(as_of_day),
                    "window_days": column(window_days),
                    "recent_days": column(recent_days),
                    "customer_id": _objects(sessions["customer_id"]),
                    "start_ns": _utc_ns(sessions["session_start"]),
                    "duration_s": sessions["duration_s"].to_numpy(dtype="float64"),
                    **{c: sessions[c].to_numpy(dtype="int64") for c in _ACTIVITY_SUMS.values()},
                }
            )
        )
    pdf = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if pdf.empty:
        return [empty_activity() for _ in calls]
    spark = prepare_session(spark)
    schema = (
        "batch long, rid long, as_of_day long, window_days long, recent_days long,"
        " customer_id string, start_ns long, duration_s double, "
        + ", ".join(f"{c} long" for c in _ACTIVITY_SUMS.values())
    )
    c = F.col
    frame = spark.createDataFrame(pdf, schema).withColumn("day", _floor_div("start_ns", _DAY_NS))
    frame = frame.where(
        (c("day") > c("as_of_day") - c("window_days"))
        & (c("day") <= c("as_of_day"))
        & c("customer_id").isNotNull()
    )
    per_customer = frame.groupBy(
        "batch", "customer_id", "as_of_day", "window_days", "recent_days"
    ).agg(
        F.sum(F.when(c("day") > c("as_of_day") - c("recent_days"), 1).otherwise(0))
        .cast("bigint")
        .alias("sessions_7d"),
        F.count(F.lit(1)).alias("sessions_28d"),
        F.countDistinct("day").alias("active_days_28d"),
        *[F.sum(col).cast("bigint").alias(name) for name, col in _ACTIVITY_SUMS.items()],
        F.aggregate(
            F.transform(
                F.array_sort(F.collect_list(F.struct("rid", "duration_s"))),
                lambda x: x["duration_s"],
            ),
            F.lit(0.0).cast("double"),
            lambda acc, x: acc + x,
        ).alias("seconds"),
        F.max("day").alias("last_day"),
    )
    earlier_days = c("window_days") - c("recent_days")
    recent_rate = c("sessions_7d") / c("recent_days").cast("double")
    earlier_rate = F.when(
        earlier_days > 0,
        (c("sessions_28d") - c("sessions_7d")) / earlier_days.cast("double"),
    ).otherwise(F.lit(0.0))
    trend = F.when(earlier_rate > 0, recent_rate / earlier_rate - F.lit(1.0)).otherwise(
        F.when(recent_rate > 0, F.lit(1.0)).otherwise(F.lit(0.0))
    )
    table = per_customer.select(
        "batch",
        "customer_id",
        "sessions_7d",
        "sessions_28d",
        c("active_days_28d").cast("bigint").alias("active_days_28d"),
        *_ACTIVITY_SUMS,
        (c("seconds") / F.lit(60.0)).alias("minutes_28d"),
        (c("as_of_day") - c("last_day")).alias("days_since_last_session"),
        trend.cast("double").alias("visit_trend"),
    ).toArrow()
    return [_activity_frame(part) for part in _split(table, len(calls))]


def _activity_frame(table: pa.Table) -> pd.DataFrame:
    if table.num_rows == 0:
        return empty_activity()
    order = np.argsort(_sort_codes(_text(table["customer_id"])), kind="stable")
    out = pd.DataFrame(
        {
            c: _text(table[c])[order]
            if c == "customer_id"
            else np.asarray(table[c].to_numpy(), dtype="float64")[order]
            if c in ("minutes_28d", "visit_trend")
            else _ints(table[c])[order]
            for c in ACTIVITY_COLUMNS
        }
    )
    return out[list(ACTIVITY_COLUMNS)]


# ------------------------------------------------------------------------------ the engine


class SparkEngine(ClickstreamEngine):
    """The clickstream work on Spark through dagster-pyspark (one session per run)."""

    pyspark: PySparkResource = Field(description="The Spark session (see spark_resource).")
    s3_scheme: str = Field(
        default="s3a",
        description="Scheme Spark reads s3:// landing objects with: s3a (Hadoop), or s3 on EMR.",
    )

    def _session(self) -> SparkSession:
        return self.pyspark.spark_session

    def normalise(
        self,
        landing: LandingZone,
        objects: Sequence[ClickstreamObject],
        partition: date,
        lateness: timedelta,
    ) -> ClickstreamResult:
        located = [(landing.uri(o.key), o.key, o.arrival_time, o.size) for o in objects]
        return normalise_objects(
            self._session,
            located,
            partition,
            lateness,
            self.s3_scheme,
            landing.object_limits,
        )

    def sessionise(self, events: pd.DataFrame, gap: timedelta) -> pd.DataFrame:
        return sessionise_frame(self._session, events, gap)

    def customer_activity(
        self, sessions: pd.DataFrame, as_of: date, window_days: int
    ) -> pd.DataFrame:
        return customer_activity_frame(self._session, sessions, as_of, window_days)
