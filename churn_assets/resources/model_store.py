"""Model store: each day's XGBoost model in XGBoost's own JSON format, with its model card.

Layout: ``models/dt=<partition>/model.json`` and ``card.json`` (written last, so a card's
presence means the model beside it is complete). The store also answers "which model
serves on day D": the newest promoted model trained before D, unless an operator pins a
version (``CHURN_SERVING_MODEL``) to roll back.
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
from pydantic import Field

from churn_assets.core.daily_model import ModelArtifact
from churn_assets.resources.location import StorageLocation

MODELS_ROOT = "models/"


class ModelStore(StorageLocation):
    """Where models live, and which one serves: used by ``model`` and ``scores``."""

    pinned_version: str = Field(
        default="",
        description="Model version to serve instead of the newest promoted one (rollback).",
    )

    @staticmethod
    def _prefix(partition: str) -> str:
        return f"{MODELS_ROOT}dt={partition}/"

    def save(self, artifact: ModelArtifact) -> str:
        prefix = self._prefix(artifact.partition)
        self.store.put(prefix + "model.json", artifact.booster_bytes)
        card = artifact.card | {"version": artifact.version, "partition": artifact.partition}
        self.store.put(prefix + "card.json", json.dumps(card, indent=2, sort_keys=True).encode())
        return self.store.uri(prefix + "model.json")

    def load(self, partition: str) -> ModelArtifact | None:
        prefix = self._prefix(partition)
        if not self.store.exists(prefix + "card.json"):
            return None
        card = json.loads(self.store.get(prefix + "card.json"))
        return ModelArtifact(
            partition=partition,
            version=card["version"],
            booster_bytes=self.store.get(prefix + "model.json"),
            card=card,
        )

    def partitions(self) -> list[str]:
        """Partitions with a complete model, oldest first."""
        found = {
            obj.key[len(MODELS_ROOT) + 3 :].split("/", 1)[0]
            for obj in self.store.list(MODELS_ROOT)
            if obj.key.endswith("/card.json")
        }
        return sorted(found)

    def serving_model(self, as_of: date) -> ModelArtifact | None:
        """The model that scores day ``as_of``: pinned, else newest promoted trained before it."""
        candidates = [p for p in self.partitions() if p < as_of.isoformat()]
        for partition in reversed(candidates):
            artifact = self.load(partition)
            if artifact is None:
                continue
            if self.pinned_version:
                if artifact.version == self.pinned_version:
                    return artifact
            elif artifact.promoted:
                return artifact
        return None


class ModelIOManager(dg.ConfigurableIOManager):
    """Stores the ``model`` asset's output in the model store."""

    model_store: ModelStore

    def handle_output(self, context: dg.OutputContext, obj: ModelArtifact) -> None:
        uri = self.model_store.save(obj)
        context.add_output_metadata({"dagster/uri": dg.MetadataValue.path(uri)})

    def load_input(self, context: dg.InputContext) -> ModelArtifact:
        partition = context.asset_partition_key
        artifact = self.model_store.load(partition)
        if artifact is None:
            raise dg.Failure(f"no model stored for {partition} in {self.model_store.store.url}")
        return artifact
