"""Metadata builders: numbers, tables and markdown that make the UI tell each day's story."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd


def numbers(values: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """Numeric metadata (plotted over partitions by the UI); None becomes a null value."""
    out: dict[str, dg.MetadataValue] = {}
    for key, value in values.items():
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            out[key] = dg.MetadataValue.null()
        elif isinstance(value, (bool, np.bool_)):
            out[key] = dg.MetadataValue.bool(bool(value))
        elif isinstance(value, (int, np.integer)):
            out[key] = dg.MetadataValue.int(int(value))
        else:
            out[key] = dg.MetadataValue.float(float(value))
    return out


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>&|~]|:(?=//)|(?<=www)\.|@)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_markdown(text: object) -> str:
    """``text`` as literal characters in the UI's markdown table cells: the characters that
    start inline markup (emphasis, code, links, images, HTML, entities, strikethrough, cell
    breaks) are backslash-escaped, GFM autolinks (``://``, ``www.``, ``@``) broken the same
    way, and control characters and line breaks shown as escapes (``\\n``)."""
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(text))
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), escaped)


def markdown_table(frame: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    """A markdown table of the first rows (no tabulate dependency); every cell and header is
    escaped (``escape_markdown``): samples of input are shown as data, never as markup."""
    shown = frame.head(max_rows)
    if shown.empty:
        return dg.MetadataValue.md("_no rows_")
    cells = shown.astype(object).where(shown.notna(), "").map(escape_markdown)
    header = "| " + " | ".join(map(escape_markdown, shown.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    body = ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False, name=None)]
    suffix = [f"\n_{len(frame) - len(shown)} more rows_"] if len(frame) > len(shown) else []
    return dg.MetadataValue.md("\n".join([header, rule, *body, *suffix]))


def column_schema(frame: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.table_schema(
        dg.TableSchema(
            columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in frame.dtypes.items()]
        )
    )


def table_metadata(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """Row count and schema: the metadata every table asset carries."""
    return {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "dagster/column_schema": column_schema(frame),
    }
