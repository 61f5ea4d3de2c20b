"""Files for people and other systems (the daily call list), next to the warehouse tables."""

from __future__ import annotations

from churn_assets.resources.location import StorageLocation


class ExportStore(StorageLocation):
    """Where ``call_list`` writes its CSV: the warehouse URL, under ``call_list/dt=<day>/``.

    Plain files, not warehouse tables: a CRM import or an e-mail job reads them without
    knowing the warehouse's version pointers.
    """

    @staticmethod
    def call_list_key(partition: str) -> str:
        return f"call_list/dt={partition}/call_list_{partition}.csv"
