"""Online metrics (scores of D joined with the matured labels of D) and the monitoring assets
(online_metrics, drift) materialised with Dagster over a warehouse and model store on disk."""

from __future__ import annotations

import math
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from churn_assets.assets.monitoring import build_monitoring_assets
from churn_assets.core.daily_model import ModelArtifact, TrainingConfig, train_daily_model
from churn_assets.core.drift import feature_references, reference_distribution
from churn_assets.core.features import FEATURE_COLUMNS, build_features
from churn_assets.core.model import load_booster
from churn_assets.core.online import join_outcomes, online_metrics, realised_quality
from churn_assets.core.scoring import score_customers
from churn_assets.core.sessions import SESSION_COLUMNS, customer_activity
from churn_assets.core.tuning import TuningConfig
from churn_assets.partitions import GraphPartitions
from churn_assets.resources.model_store import ModelStore
from churn_assets.resources.warehouse import ParquetWarehouse
from churn_assets.settings import PipelineSettings

# ---------------------------------------------------------------- by hand


def hand_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = list("ABCDEFGHIJ")
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    tier = ["high"] * 4 + ["medium"] * 3 + ["low"] * 3
    scores = pd.DataFrame(
        {"customer_id": ids, "churn_probability": p, "risk_tier": tier, "model_version": "m1"}
    )
    # J was scored but has no label; K has a label but was not scored.
    labels = pd.DataFrame(
        {"customer_id": [*"ABCDEFGHI", "K"], "churned": [1, 0, 1, 0, 0, 1, 0, 0, 0, 1]}
    )
    return scores, labels


def test_online_metrics_by_hand() -> None:
    scores, labels = hand_case()
    result = online_metrics(scores, labels)
    m = result.metrics
    assert m["customers_scored"] == 10 and m["customers_labelled"] == 10
    assert m["customers_matched"] == 9
    assert m["scored_without_label"] == 1 and m["labelled_not_scored"] == 1
    # churners A (0.9), C (0.7), F (0.4) against 6 stayers: 6 + 5 + 3 of 18 pairs ordered
    assert m["realised_auc"] == pytest.approx(14 / 18)
    assert m["churn_rate"] == pytest.approx(1 / 3)
    assert m["mean_predicted"] == pytest.approx(4.5 / 9)
    # top decile of 9 rows = A alone, who churned
    assert m["precision_top_decile"] == 1.0 and m["lift_top_decile"] == pytest.approx(3.0)
    assert m["capture_top_decile"] == pytest.approx(1 / 3)
    # flagged = the 'high' tier A, B, C, D: two of them churned, two of the three churners
    assert m["flagged"] == 4
    assert m["flagged_churn_share"] == 0.5 and m["flagged_capture"] == pytest.approx(2 / 3)
    assert result.calibration["n"].sum() == 9
    assert result.joined["customer_id"].tolist() == list("ABCDEFGHI")


def test_online_metrics_of_a_day_without_churners_are_undefined_not_errors() -> None:
    scores, labels = hand_case()
    m = online_metrics(scores, labels.assign(churned=0)).metrics
    assert math.isnan(m["realised_auc"]) and math.isnan(m["flagged_capture"])
    assert m["flagged_churn_share"] == 0.0
    passed, details = realised_quality(m["realised_auc"], 0.8, 0.05)
    assert passed and "undefined" in details["note"]


def test_join_refuses_duplicate_labels() -> None:
    scores, labels = hand_case()
    with pytest.raises(pd.errors.MergeError):
        join_outcomes(scores, pd.concat([labels, labels.assign(churned=1)]).reset_index())
    _, counts = join_outcomes(scores, pd.concat([labels, labels]))  # same rows twice: fine
    assert counts["customers_matched"] == 9


def test_realised_quality_against_the_offline_estimate() -> None:
    assert realised_quality(0.80, 0.85, 0.05)[0] is True  # exactly at the tolerance
    passed, details = realised_quality(0.79, 0.85, 0.05)
    assert passed is False and details["auc_shortfall"] == pytest.approx(0.06)
    assert realised_quality(0.99, None, 0.05)[0] is True


# ---------------------------------------------------------------- a history with known outcomes

START = date(2026, 1, 1)


def history(n_customers: int = 300, n_days: int = 14, seed: int = 0):
    """Features and labels whose churn probability is known: logit of support calls, tenure."""
    rng = np.random.default_rng(seed)
    features, labels = {}, {}
    for i in range(n_days):
        f = pd.DataFrame(
            rng.poisson(2.0, size=(n_customers, len(FEATURE_COLUMNS))).astype(np.float64),
            columns=list(FEATURE_COLUMNS),
        )
        f["tenure_days"] = rng.integers(10, 900, n_customers).astype(np.float64)
        plan = rng.integers(0, 3, n_customers)
        for k, name in enumerate(("basic", "plus", "pro")):
            f[f"plan_{name}"] = (plan == k).astype(np.float64)
        logit = -3.0 + 0.9 * f["support_calls_28d"] - 0.004 * f["tenure_days"]
        churned = (rng.random(n_customers) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        ids = [f"C{k:05d}" for k in range(n_customers)]
        f.insert(0, "customer_id", ids)
        key = (START + timedelta(days=i)).isoformat()
        features[key] = f
        labels[key] = pd.DataFrame({"customer_id": ids, "churned": churned})
    return features, labels


CONFIG = TrainingConfig(
    validation_days=3,
    test_days=3,
    num_boost_round=60,
    early_stopping_rounds=10,
    tuning=TuningConfig(max_trials=1),
)


def test_realised_quality_of_served_scores_matches_the_offline_estimate() -> None:
    features, labels = history(n_days=20)
    training = {k: features[k] for k in sorted(features)[:12]}
    outcome = train_daily_model(date(2026, 2, 1), training, labels, None, CONFIG, {}, purge_days=0)
    offline_auc = outcome.artifact.card["offline_estimate"]["auc"]
    booster = load_booster(outcome.artifact.booster_bytes)
    served_day = sorted(features)[-1]  # a day the model never saw, outcomes known
    scores = score_customers(booster, features[served_day], outcome.artifact.card["threshold"], "m")
    m = online_metrics(scores, labels[served_day]).metrics
    assert m["customers_matched"] == 300
    assert abs(m["realised_auc"] - offline_auc) < 0.06
    assert realised_quality(m["realised_auc"], offline_auc, 0.06)[0]
    assert m["flagged_churn_share"] > m["churn_rate"]  # flagged customers churn more
    assert m["calibration_error"] < 0.1
    # Scores handed out at random: the realised AUC drops and the check warns.
    shuffled = scores.assign(
        churn_probability=np.random.default_rng(1).permutation(scores["churn_probability"])
    )
    worse = online_metrics(shuffled, labels[served_day]).metrics
    assert worse["realised_auc"] < 0.65
    assert realised_quality(worse["realised_auc"], offline_auc, 0.05)[0] is False


# ---------------------------------------------------------------- the assets, with Dagster

SETTINGS = PipelineSettings(
    history_start=START,
    horizon_days=2,
    grace_days=1,
    feature_window_days=3,
    training_window_days=7,
    training=TrainingConfig(validation_days=1, test_days=1),
)
PARTITIONS = GraphPartitions.from_settings(SETTINGS)
DAY = SETTINGS.scores_start  # the first scored day
N = 40


def billing_window() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frames = []
    for offset in (-2, -1, 0):
        snapshot = pd.Timestamp(DAY + timedelta(days=offset))
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"C{k:05d}" for k in range(N)],
                    "account_name": "Acme, Inc.",
                    "signup_date": snapshot - pd.to_timedelta(rng.integers(5, 900, N), "D"),
                    "plan": rng.choice(["basic", "plus", "pro"], N),
                    "seats": rng.integers(1, 20, N),
                    "mrr": rng.integers(10, 500, N).astype(np.float64),
                    "cancelled_service": False,
                    "cancelled_at": pd.NaT,
                    "new_customer": False,
                    "reactivated_at": pd.NaT,
                    "support_calls": rng.poisson(0.5, N),
                    "snapshot_date": snapshot,
                }
            ).astype({"cancelled_at": "datetime64[ns]", "reactivated_at": "datetime64[ns]"})
        )
    return pd.concat(frames, ignore_index=True)


def sessions_of(offset: int) -> pd.DataFrame:
    rng = np.random.default_rng(10 + offset)
    who = [f"C{k:05d}" for k in range(0, N, 2)]
    start = pd.Timestamp(DAY + timedelta(days=offset), tz="UTC") + pd.to_timedelta(
        rng.integers(0, 20 * 3600, len(who)), "s"
    )
    duration = rng.integers(60, 3000, len(who))
    table = pd.DataFrame(
        {
            "customer_id": who,
            "session_id": [
                f"{c}-{int(s.value // 1_000_000)}" for c, s in zip(who, start, strict=True)
            ],
            "session_start": start,
            "session_end": start + pd.to_timedelta(duration, "s"),
            "duration_s": duration.astype(np.float64),
            **{c: rng.integers(0, 5, len(who)).astype(np.int64) for c in SESSION_COLUMNS[5:]},
        }
    )
    return table[list(SESSION_COLUMNS)]


def stub(name: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(name=name, partitions_def=partitions_def)
    def _never_run() -> None:
        raise AssertionError(f"{name} is read from the warehouse, never computed here")

    return _never_run


@pytest.fixture()
def monitored_day(tmp_path):
    """A warehouse and a model store holding everything the monitoring assets of DAY read."""
    warehouse = ParquetWarehouse(url=str(tmp_path / "warehouse"), s3=S3Resource())
    models = ModelStore(url=str(tmp_path / "models"), s3=S3Resource())
    billing = billing_window()
    sessions = {DAY + timedelta(days=o): sessions_of(o) for o in (-2, -1, 0)}
    activity = customer_activity(pd.concat(sessions.values()), DAY, SETTINGS.feature_window_days)
    features = build_features(billing, activity, DAY, SETTINGS.feature_window_days)

    h_features, h_labels = history(n_days=10)
    trained = train_daily_model(
        DAY - timedelta(days=1), h_features, h_labels, None, CONFIG, {}, purge_days=0
    ).artifact
    scores = score_customers(
        load_booster(trained.booster_bytes), features, trained.card["threshold"], trained.version
    )
    top = scores.sort_values("rank")["customer_id"].head(5)
    labels = pd.DataFrame(
        {"customer_id": features["customer_id"], "churned": features["customer_id"].isin(top)}
    ).astype({"churned": np.int64})

    def put(asset: str, day: date, frame: pd.DataFrame) -> None:
        warehouse.write_tables(warehouse.partition_prefix([asset], day.isoformat()), "v1", frame)

    for day, table in sessions.items():
        put("sessions", day, table)
        put("raw_billing", day, billing.loc[billing["snapshot_date"] == pd.Timestamp(day)])
    put("features", DAY, features)
    put("scores", DAY, scores)
    put("labels", DAY, labels)

    def save_model(reference_features: pd.DataFrame, offline_auc: float) -> None:
        card = trained.card | {
            "reference": {
                "features": feature_references(reference_features, FEATURE_COLUMNS),
                "score": reference_distribution(scores["churn_probability"]),
            },
            "offline_estimate": {"auc": offline_auc},
        }
        models.save(ModelArtifact(trained.partition, trained.version, trained.booster_bytes, card))

    return {
        "warehouse": warehouse,
        "models": models,
        "features": features,
        "scores": scores,
        "put": put,
        "save_model": save_model,
    }


def materialize(
    day_setup, instance: dg.DagsterInstance | None = None
) -> dict[str, dg.AssetCheckEvaluation]:
    assets = [
        stub("scores", PARTITIONS.scores),
        stub("labels", PARTITIONS.daily),
        stub("features", PARTITIONS.daily),
        stub("raw_billing", PARTITIONS.daily),
        stub("sessions", PARTITIONS.daily),
        *build_monitoring_assets(SETTINGS, PARTITIONS),
    ]
    result = dg.materialize(
        assets,
        selection=["online_metrics", "drift"],
        partition_key=DAY.isoformat(),
        resources={"io_manager": day_setup["warehouse"], "model_store": day_setup["models"]},
        instance=instance or dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_monitoring_assets_on_a_stable_day(monitored_day) -> None:
    monitored_day["save_model"](monitored_day["features"], offline_auc=0.7)
    checks = materialize(monitored_day)
    assert set(checks) == {
        "realised_quality",
        "realised_beats_heuristic",
        "feature_drift",
        "score_drift",
        "training_serving_skew",
    }
    assert all(c.passed for c in checks.values()), {k: c.passed for k, c in checks.items()}
    assert checks["realised_quality"].metadata["realised_auc"].value == 1.0  # top 5 churned
    assert checks["feature_drift"].metadata["max_psi"].value == pytest.approx(0.0)
    skew = checks["training_serving_skew"].metadata
    assert skew["customers_compared"].value == N and skew["mismatches"].value == 0
    stored = monitored_day["warehouse"].read_tables(f"online_metrics/dt={DAY.isoformat()}/")
    assert stored["summary"]["offline_auc"].tolist() == [0.7]


def test_monitoring_checks_catch_drift_skew_and_a_quality_drop(monitored_day) -> None:
    shifted = monitored_day["features"].assign(
        support_calls_28d=lambda f: f["support_calls_28d"] + 5  # training saw far more calls
    )
    monitored_day["save_model"](shifted, offline_auc=0.7)
    served = monitored_day["features"].copy()
    served.loc[3, "seats"] += 1  # one served value no longer matches the raw data
    monitored_day["put"]("features", DAY, served)
    lowest = monitored_day["scores"].sort_values("rank")["customer_id"].tail(5)
    labels = served[["customer_id"]].assign(churned=served["customer_id"].isin(lowest).astype(int))
    monitored_day["put"]("labels", DAY, labels)  # the customers ranked last churned
    checks = materialize(monitored_day)
    assert not checks["feature_drift"].passed
    assert checks["feature_drift"].severity == dg.AssetCheckSeverity.ERROR  # PSI > 0.25
    assert checks["feature_drift"].metadata["worst_feature"].value == "support_calls_28d"
    assert checks["score_drift"].passed
    assert not checks["training_serving_skew"].passed
    assert checks["training_serving_skew"].metadata["mismatches"].value == 1
    assert not checks["realised_quality"].passed
    assert checks["realised_quality"].severity == dg.AssetCheckSeverity.WARN
    assert checks["realised_quality"].metadata["realised_auc"].value == 0.0


def seed_online_metrics(instance: dg.DagsterInstance, day: date, version: str, auc: float) -> None:
    """An earlier day's online_metrics as the instance records it: the model lost to the
    heuristic (realised 0.55 against 0.70)."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="online_metrics",
            partition=day.isoformat(),
            metadata={
                "model_version": dg.MetadataValue.text(version),
                "realised_auc": auc,
                "realised_heuristic_auc": 0.70,
                "offline_auc": 0.80,
            },
        )
    )


def test_losing_to_the_heuristic_several_days_running_is_an_error(monitored_day) -> None:
    monitored_day["save_model"](monitored_day["features"], offline_auc=0.8)
    features, scores = monitored_day["features"], monitored_day["scores"]
    # The churners are customers without sessions (the heuristic ranks them first) whom the
    # model ranked last.
    idle = features.loc[features["sessions_28d"] == 0, "customer_id"]
    churners = scores.loc[scores["customer_id"].isin(idle)].sort_values("rank").tail(4)
    labels = features[["customer_id"]].assign(
        churned=features["customer_id"].isin(churners["customer_id"]).astype(np.int64)
    )
    monitored_day["put"]("labels", DAY, labels)
    version = scores["model_version"].iloc[0]
    failing = SETTINGS.monitoring.realised_failing_days
    assert failing == 3

    with dg.DagsterInstance.ephemeral() as instance:  # only one earlier day lost: no error yet
        seed_online_metrics(instance, DAY - timedelta(days=1), version, 0.55)
        check = materialize(monitored_day, instance)["realised_beats_heuristic"]
        assert check.passed
        assert check.metadata["days_below_heuristic"].value == 2

    with dg.DagsterInstance.ephemeral() as instance:
        for back in (1, 2):
            seed_online_metrics(instance, DAY - timedelta(days=back), version, 0.55)
        check = materialize(monitored_day, instance)["realised_beats_heuristic"]
        assert not check.passed
        assert check.severity == dg.AssetCheckSeverity.ERROR
        meta = check.metadata
        assert meta["days_below_heuristic"].value == 3
        assert meta["realised_auc"].value < meta["heuristic_auc"].value
        assert meta["heuristic_auc"].value > 0.7
        assert "0.55" in meta["recent_days"].value  # the numbers of the earlier days

    with dg.DagsterInstance.ephemeral() as instance:  # another model lost on those days
        for back in (1, 2):
            seed_online_metrics(instance, DAY - timedelta(days=back), "older-model", 0.55)
        assert materialize(monitored_day, instance)["realised_beats_heuristic"].passed
