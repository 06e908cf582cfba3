"""LocalRegistryBackend against a real MLflow SQLite store in a tmp_path workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from mcp_server.backends.local.data import LocalDatasetBackend, path_from_uri
from mcp_server.backends.local.mlflow_store import ensure_experiment, open_client
from mcp_server.backends.local.registry import LocalRegistryBackend
from mcp_server.core.models import DatasetRef, Lineage, RegisteredModel, RegistrationRequest
from mcp_server.core.spec.schema import validate_spec
from mcp_server.errors import NotFoundError, RegistryError
from mcp_server.settings import Settings
from tests.conftest import make_model_folder

NAME = "breast-cancer-classification"


def prepare(settings: Settings) -> DatasetRef:
    spec = validate_spec(
        {
            "model_type": "supervised_learning",
            "task": "classification",
            "algorithm": "xgboost",
            "dataset": {"source": "sklearn://breast_cancer", "target": "target"},
        }
    )
    return LocalDatasetBackend(settings, base_dir=settings.home).prepare_dataset(spec)


def read_test_split(ref: DatasetRef) -> pd.DataFrame:
    return pd.read_parquet(path_from_uri(ref.splits["test"]) / "data.parquet")


def request(
    ref: DatasetRef,
    folder: Path,
    job: str,
    algorithm: str,
    hyperparameters: dict[str, Any],
    run_id: str | None = None,
    data_version: str | None = None,
) -> RegistrationRequest:
    return RegistrationRequest(
        model_name=NAME,
        model_uri=folder.as_uri(),
        tracking_run_id=run_id,
        metrics={"f1": 0.97, "accuracy": 0.96},
        lineage=Lineage(
            issue_number=12,
            issue_url="https://github.com/o/r/issues/12",
            execution_name=f"exec-{job}",
            job_name=job,
            spec_hash="5pec5pec5pec",
            data_version=data_version or ref.data_version,
            dataset_id=ref.dataset_id,
        ),
        model_type="supervised_learning",
        algorithm=algorithm,
        feature_names=ref.feature_names,
        hyperparameters=hyperparameters,
        preprocessing={"scaling": "standard", "missing_values": "median"},
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One workspace; five registrations (one repeated) in the order a model's life would see."""
    settings = Settings(home=tmp_path_factory.mktemp("registry"), allow_write=True)
    ref = prepare(settings)
    jobs = settings.home / "jobs"
    logistic = make_model_folder(
        jobs / "a", ref, LogisticRegression(C=1.0, max_iter=2000), "logistic_regression"
    )
    weaker = make_model_folder(
        jobs / "b", ref, LogisticRegression(C=0.5, max_iter=2000), "logistic_regression"
    )
    boosted = make_model_folder(jobs / "c", ref, XGBClassifier(n_estimators=20, max_depth=3), "xgboost")
    client = open_client(settings)
    run_id = client.create_run(ensure_experiment(client, "issue-12", settings)).info.run_id
    backend = LocalRegistryBackend(settings)
    xgb_params = {"n_estimators": 20, "max_depth": 3}
    out: dict[str, Any] = {
        "settings": settings,
        "ref": ref,
        "client": client,
        "run_id": run_id,
        "folder_a": logistic,
        "folder_c": boosted,
    }
    out["a"] = backend.register_model(
        request(ref, logistic, "job-a", "logistic_regression", {"C": 1.0}, run_id=run_id)
    )
    out["a_again"] = backend.register_model(
        request(ref, logistic, "job-a", "logistic_regression", {"C": 1.0}, run_id=run_id)
    )
    out["b"] = backend.register_model(request(ref, weaker, "job-b", "logistic_regression", {"C": 0.5}))
    out["c"] = backend.register_model(request(ref, boosted, "job-c", "xgboost", xgb_params))
    out["d"] = backend.register_model(
        request(ref, boosted, "job-d", "xgboost", xgb_params, data_version="feedbeefcafe")
    )
    return out


def test_same_job_twice_returns_the_first_version(world: dict[str, Any]) -> None:
    first, again = world["a"], world["a_again"]
    assert first.version == "1"
    assert first.semantic_version == "1.0.0"
    assert again.version == first.version
    assert again.semantic_version == first.semantic_version
    assert again.run_id == first.run_id == world["run_id"]
    assert first.model_uri == f"models:/{NAME}/1"
    versions = world["client"].search_model_versions(f"name = '{NAME}' and tags.job_name = 'job-a'")
    assert len(versions) == 1


def test_semantic_versions_follow_the_changes(world: dict[str, Any]) -> None:
    assert (world["b"].version, world["b"].semantic_version) == ("2", "1.1.0")  # hyperparameters
    assert (world["c"].version, world["c"].semantic_version) == ("3", "2.0.0")  # algorithm
    assert (world["d"].version, world["d"].semantic_version) == ("4", "2.0.1")  # data only
    assert len(world["client"].search_model_versions(f"name = '{NAME}'")) == 4


def test_challenger_alias_points_at_the_latest(world: dict[str, Any]) -> None:
    client = world["client"]
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "4"
    assert world["d"].aliases == ["challenger"]
    assert client.get_model_version(NAME, "1").aliases == []
    assert world["a"].aliases == ["challenger"]  # it was the challenger when registered


def test_tags_carry_lineage_fingerprint_and_metrics(world: dict[str, Any]) -> None:
    ref = world["ref"]
    tags = world["client"].get_model_version(NAME, "3").tags
    assert tags["issue_number"] == "12"
    assert tags["issue_url"] == "https://github.com/o/r/issues/12"
    assert tags["execution_name"] == "exec-job-c"
    assert tags["job_name"] == "job-c"
    assert tags["spec_hash"] == "5pec5pec5pec"
    assert tags["data_version"] == ref.data_version
    assert tags["dataset_id"] == ref.dataset_id
    assert tags["semantic_version"] == "2.0.0"
    assert tags["algorithm"] == "xgboost"
    assert tags["model_type"] == "supervised_learning"
    assert json.loads(tags["feature_schema"]) == ref.feature_names
    assert len(tags["training_config_hash"]) == 12
    assert float(tags["metric.f1"]) == 0.97
    registered = world["client"].get_registered_model(NAME)
    assert "challenger" in registered.description


def test_challenger_loads_with_pyfunc_and_predicts_on_raw_features(world: dict[str, Any]) -> None:
    import mlflow.pyfunc
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    ref = world["ref"]
    rows = read_test_split(ref)[ref.feature_names]
    with _use_tracking_uri(world["settings"].tracking_uri):
        model = mlflow.pyfunc.load_model(f"models:/{NAME}@challenger")
        first = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    expected = joblib.load(world["folder_c"] / "model.joblib").predict(rows)
    np.testing.assert_array_equal(np.asarray(model.predict(rows)), expected)
    expected_first = joblib.load(world["folder_a"] / "model.joblib").predict(rows)
    np.testing.assert_array_equal(np.asarray(first.predict(rows)), expected_first)
    assert model.metadata.get_input_schema().input_names() == ref.feature_names


def test_pip_requirements_are_pinned_not_inferred(world: dict[str, Any], tmp_path: Path) -> None:
    from importlib.metadata import version

    import mlflow.artifacts
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(world["settings"].tracking_uri):
        boosted = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/3", dst_path=str(tmp_path / "c")))
        linear = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/1", dst_path=str(tmp_path / "a")))
    requirements = (boosted / "requirements.txt").read_text().split()
    assert f"scikit-learn=={version('scikit-learn')}" in requirements
    assert f"xgboost-cpu=={version('xgboost-cpu')}" in requirements
    assert not any(r.startswith(("torch", "xgboost==")) for r in requirements)
    assert not any(r.startswith("xgboost") for r in (linear / "requirements.txt").read_text().split())
    assert "cloudpickle" in (boosted / "MLmodel").read_text()


def test_runs_and_model_files(world: dict[str, Any]) -> None:
    client, settings = world["client"], world["settings"]
    run_b = client.get_run(world["b"].run_id)
    assert client.get_experiment(run_b.info.experiment_id).name == "registry"
    assert run_b.info.status == "FINISHED"
    assert run_b.data.tags["job_name"] == "job-b"
    assert world["a"].run_id == world["run_id"]
    for registered in (world["a"], world["b"], world["c"], world["d"]):
        folder = settings.home / "models" / NAME / registered.version
        assert (folder / "model.joblib").is_file()
        assert (folder / "metadata.json").is_file()
        record = json.loads((folder / "registration.json").read_text())
        assert (
            RegisteredModel.model_validate(
                {k: v for k, v in record.items() if k not in ("source", "tags")}
            ).version
            == registered.version
        )
        assert record["tags"]["semantic_version"] == registered.semantic_version
        assert record["model_uri"] == registered.model_uri


def test_unreadable_model_folder(world: dict[str, Any], tmp_path: Path) -> None:
    backend = LocalRegistryBackend(world["settings"])
    bad = request(world["ref"], tmp_path, "job-missing", "xgboost", {})
    with pytest.raises(RegistryError, match=r"cannot load the model at file://.*model\.joblib"):
        backend.register_model(bad)


def test_unknown_tracking_run(world: dict[str, Any]) -> None:
    backend = LocalRegistryBackend(world["settings"])
    bad = request(
        world["ref"],
        world["folder_a"],
        "job-norun",
        "logistic_regression",
        {"C": 1.0},
        run_id="0123456789abcdef0123456789abcdef",
    )
    with pytest.raises(
        RegistryError,
        match=r"cannot register breast-cancer-classification from job "
        r"job-norun: .*Run .* not found",
    ):
        backend.register_model(bad)


def test_set_champion_moves_the_champion_alias(world: dict[str, Any]) -> None:
    backend = LocalRegistryBackend(world["settings"])
    promoted = backend.set_champion(NAME, "3")
    assert "champion" in promoted.aliases and promoted.version == "3"
    backend.set_champion(NAME, "2")
    client = world["client"]
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"
    assert "champion" not in client.get_model_version(NAME, "3").aliases
    with pytest.raises(NotFoundError, match=f"no version 99 of model {NAME}"):
        backend.set_champion(NAME, "99")
