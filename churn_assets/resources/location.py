"""The base of every resource rooted at a storage URL (a local directory or S3 prefix)."""

from __future__ import annotations

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from churn_assets.resources.storage import ObjectStore, open_object_store


class StorageLocation(dg.ConfigurableResource):
    """Opens its object store lazily, once per resource instance, from ``url``."""

    url: str = Field(description="Local directory or s3://bucket/prefix.")
    s3: S3Resource = Field(description="S3 client settings, used when url is s3://…")
    _store: ObjectStore | None = PrivateAttr(default=None)

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = open_object_store(self.url, self.s3.get_client)
        return self._store
