"""Metadata builders: numbers, tables and markdown that make the UI tell each day's story."""

from __future__ import annotations

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


def markdown_table(frame: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    """A markdown table of the first rows (no tabulate dependency)."""
    shown = frame.head(max_rows)
    if shown.empty:
        return dg.MetadataValue.md("_no rows_")
    cells = shown.astype(object).where(shown.notna(), "").astype(str)
    cells = cells.apply(lambda column: column.str.replace("|", "\\|", regex=False))
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
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
