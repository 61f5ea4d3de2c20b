"""The sales desk: a read-only web page over the warehouse for sales and marketing.

``queries`` (pure DuckDB/Arrow), ``warehouse`` (reads tables through the project's
``ParquetWarehouse``), ``status`` (freshness banner and trust panel in words), ``app``
(Starlette + Jinja2 pages), ``server`` (uvicorn, bound to 127.0.0.1 by default).
"""
