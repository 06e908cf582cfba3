"""Clustering and dimensionality reduction: the real training and evaluation programs as subprocesses.

Each job runs ``python -m training_containers.sklearn.train`` under the training contract (a
folder playing ``/opt/ml``: hyperparameters.json with string values, channels, model/) or
``python -m training_containers.evaluation.evaluate`` under the processing contract, on the
shipped datasets split 70/15/15 as data preparation splits them. The hyperparameters and
preprocessing come from the example issues, so the examples and these figures agree. The
jobs of a fixture start together and take 2-4 s; t-SNE on digits (about 5 s to fit, more on a
busy machine) is marked slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import datasets
from sklearn.cluster import DBSCAN
from sklearn.decomposition import PCA
from sklearn.metrics import explained_variance_score, pairwise_distances, silhouette_score
from sklearn.model_selection import train_test_split

from mcp_server.backends.local.job_folder import parse_metrics
from mcp_server.backends.local.launcher import job_environment
from mcp_server.core.jobs.requests import encode_hyperparameters
from mcp_server.core.spec.schema import TrainingSpec, validate_spec
from tests.conftest import EXAMPLES, REPO_ROOT
from training_containers.common.dbscan import InductiveDBSCAN

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMEOUT_S = 180
#: OpenMP threads per job. The jobs of a fixture run side by side on 2 cores, often beside other
#: work: OpenMP's spinning threads then slow t-SNE about fivefold (digits' 1,257 training rows:
#: 44 s with 2 threads on a busy machine, 9 s with 1), so each job gets one thread.
JOB_THREADS = "1"


def example_spec(name: str) -> TrainingSpec:
    """The spec of an example issue (its fenced yaml block)."""
    body = (EXAMPLES / name).read_text()
    return validate_spec(yaml.safe_load(body.split("```yaml\n", 1)[1].split("```", 1)[0]))


def write_splits(root: Path, dataset: str, label: bool = True) -> dict[str, Path]:
    """Split a shipped dataset 70/15/15 (seed 42) into ``<root>/<split>/data.parquet``.

    With ``label`` the ``target`` column stays in every split (the label column the spec
    names); without it the column is dropped, as data preparation does when the spec names none.
    """
    frame = getattr(datasets, f"load_{dataset}")(as_frame=True).frame
    frame = frame if label else frame.drop(columns="target")
    rest, test = train_test_split(frame, test_size=0.15, random_state=42)
    train, validation = train_test_split(rest, test_size=0.15 / 0.85, random_state=42)
    folders = {}
    for name, rows in (("train", train), ("validation", validation), ("test", test)):
        (root / name).mkdir(parents=True)
        rows.reset_index(drop=True).to_parquet(root / name / "data.parquet")
        folders[name] = root / name
    return folders


def start_training(
    job: Path, spec: TrainingSpec, splits: dict[str, Path], **changes: Any
) -> subprocess.Popen:
    """Lay out ``job`` as /opt/ml for the spec (``changes`` override hyperparameters); start the job."""
    features = [c for c in pd.read_parquet(splits["train"] / "data.parquet").columns if c != "target"]
    preprocessing = changes.pop("_preprocessing", spec.preprocessing.model_dump(mode="json"))
    values = {
        **spec.hyperparameters,
        **changes,
        "_algorithm": spec.algorithm,
        "_task": spec.task,
        "_target": changes.pop("_target", "target"),
        "_preprocessing": preprocessing,
        "_feature_types": dict.fromkeys(features, "numeric"),
        "_seed": 0,
    }
    (job / "input/config").mkdir(parents=True)
    (job / "input/config/hyperparameters.json").write_text(json.dumps(encode_hyperparameters(values)))
    (job / "input/data").mkdir()
    for channel in ("train", "validation"):
        (job / "input/data" / channel).symlink_to(splits[channel], target_is_directory=True)
    return _start("training_containers.sklearn.train", {"MLOPS_OPT_ML": str(job)}, job)


def start_evaluation(
    job: Path,
    model_dir: Path,
    spec: TrainingSpec,
    splits: dict[str, Path],
    metrics: list[str] | None = None,
    target: str | None = "target",
) -> subprocess.Popen:
    """Mount the model and the splits under ``job/input`` and start the evaluation program."""
    (job / "input/config").mkdir(parents=True)
    config = {
        "evaluation_id": job.name,
        "task": spec.task,
        "algorithm": spec.algorithm,
        "target": target,
        "metrics": spec.metrics if metrics is None else metrics,
        "seed": 0,
    }
    (job / "input/config/evaluation.json").write_text(json.dumps(config))
    (job / "input/model").symlink_to(model_dir, target_is_directory=True)
    for name, folder in splits.items():
        (job / "input" / name).symlink_to(folder, target_is_directory=True)
    return _start("training_containers.evaluation.evaluate", {"MLOPS_PROCESSING_ROOT": str(job)}, job)


def _start(module: str, variables: dict[str, str], job: Path) -> subprocess.Popen:
    """Start the program cold, in the launcher's job environment, one OpenMP thread (``JOB_THREADS``)."""
    with (job / "job.log").open("w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO_ROOT,
            env=job_environment({**variables, "OMP_NUM_THREADS": JOB_THREADS}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish(process: subprocess.Popen, job: Path) -> dict[str, Any]:
    """Wait for the job; return its exit code, log, parsed metric lines and, if any, failure."""
    code = process.wait(timeout=TIMEOUT_S)
    log = (job / "job.log").read_text()
    failure = job / "output" / "failure"
    return {
        "code": code,
        "log": log,
        "metrics": parse_metrics(log),
        "failure": failure.read_text() if failure.is_file() else None,
        "job": job,
    }


def preprocessed(model_dir: Path, split: Path) -> tuple[Any, np.ndarray]:
    """The saved pipeline and the split's rows through its preprocessing step."""
    model = joblib.load(model_dir / "model.joblib")
    features = json.loads((model_dir / "metadata.json").read_text())["feature_names"]
    rows = pd.read_parquet(split / "data.parquet")[features]
    return model, np.asarray(model.named_steps["preprocess"].transform(rows), dtype=float)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("unsupervised")
    splits = {name: write_splits(root / name, name) for name in ("iris", "wine", "digits")}
    return {
        "root": root,
        **splits,
        "iris-unlabelled": write_splits(root / "iris-unlabelled", "iris", label=False),
    }


@pytest.fixture(scope="module")
def specs() -> dict[str, TrainingSpec]:
    names = {
        "kmeans": "iris-kmeans.md",
        "dbscan": "wine-dbscan.md",
        "pca": "digits-pca.md",
        "tsne": "digits-tsne.md",
    }
    return {algorithm: example_spec(name) for algorithm, name in names.items()}


@pytest.fixture(scope="module")
def trained(data, specs) -> dict[str, dict[str, Any]]:
    """The example models, a DBSCAN whose eps merges every wine into one cluster, and a refused job."""
    root = data["root"] / "jobs"
    jobs = {
        "kmeans": (specs["kmeans"], data["iris"], {}),
        "dbscan": (specs["dbscan"], data["wine"], {}),
        "pca": (specs["pca"], data["digits"], {}),
        "one-cluster": (specs["dbscan"], data["wine"], {"eps": 100.0}),
        "unlabelled": (specs["kmeans"], data["iris-unlabelled"], {"_target": None}),
        "target-encoding": (
            specs["kmeans"],
            data["iris"],
            {"_preprocessing": {"encoding": "target", "scaling": "none"}},
        ),
    }
    started = {
        name: start_training(root / name, spec, splits, **changes)
        for name, (spec, splits, changes) in jobs.items()
    }
    return {name: finish(process, root / name) for name, process in started.items()}


@pytest.fixture(scope="module")
def evaluated(data, specs, trained) -> dict[str, dict[str, Any]]:
    """The evaluation job of each trained example model and of the one-cluster DBSCAN."""
    root = data["root"] / "evaluations"
    cases = {
        "kmeans": (specs["kmeans"], data["iris"]),
        "dbscan": (specs["dbscan"], data["wine"]),
        "pca": (specs["pca"], data["digits"]),
        "one-cluster": (specs["dbscan"], data["wine"]),
        "unlabelled": (specs["kmeans"], data["iris-unlabelled"]),
    }
    started = {
        name: start_evaluation(
            root / name,
            trained[name]["job"] / "model",
            spec,
            splits,
            target=None if name == "unlabelled" else "target",
        )
        for name, (spec, splits) in cases.items()
    }
    results = {name: finish(process, root / name) for name, process in started.items()}
    for result in results.values():
        report = result["job"] / "output" / "report.json"
        result["report"] = json.loads(report.read_text()) if report.is_file() else None
    return results


def test_kmeans_on_iris_reaches_the_silhouette_the_issue_demands(trained, data, specs):
    job = trained["kmeans"]
    assert job["code"] == 0, job["log"]
    assert job["metrics"]["train_silhouette"] > 0.5
    assert job["metrics"]["train_n_clusters"] == 3
    model_dir = job["job"] / "model"
    model, rows = preprocessed(model_dir, data["iris"]["train"])
    kmeans = model.named_steps["model"]
    assert job["metrics"]["train_silhouette"] == pytest.approx(
        silhouette_score(rows, kmeans.labels_), abs=1e-5
    )
    labels = pd.read_parquet(model_dir / "labels.parquet")
    assert list(labels.columns) == ["cluster", "target"]
    assert (labels["cluster"].to_numpy() == kmeans.labels_).all()
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["target"] == "target" and "target" not in metadata["feature_names"]
    assert metadata["hyperparameters"]["n_clusters"] == 3 and metadata["predicts_new_rows"] is True
    assert sum(metadata["cluster_sizes"].values()) == metadata["n_train"] == len(labels)
    validation = pd.read_parquet(data["iris"]["validation"] / "data.parquet")
    assert set(model.predict(validation[metadata["feature_names"]])) <= {0, 1, 2}
    assert "validation_silhouette" in job["metrics"]


def test_dbscan_finds_clusters_and_labels_new_rows_by_their_nearest_core_sample(trained, data, specs):
    job = trained["dbscan"]
    assert job["code"] == 0, job["log"]
    assert job["metrics"]["train_n_clusters"] >= 2
    assert 0 < job["metrics"]["train_noise_fraction"] < 0.5
    model_dir = job["job"] / "model"
    model, rows = preprocessed(model_dir, data["wine"]["train"])
    estimator = model.named_steps["model"]
    assert isinstance(estimator, InductiveDBSCAN)
    params = specs["dbscan"].hyperparameters
    # the training rows keep DBSCAN's own labels, not predict's
    reference = DBSCAN(eps=params["eps"], min_samples=params["min_samples"]).fit(rows)
    assert (pd.read_parquet(model_dir / "labels.parquet")["cluster"].to_numpy() == reference.labels_).all()
    cores = estimator.components_
    assert (estimator.predict(cores) == estimator.labels_[estimator.core_sample_indices_]).all()
    _, test_rows = preprocessed(model_dir, data["wine"]["test"])
    distances = pairwise_distances(test_rows, cores)
    nearest = distances.argmin(axis=1)
    expected = np.where(
        distances.min(axis=1) <= params["eps"], estimator.labels_[estimator.core_sample_indices_][nearest], -1
    )
    assert (estimator.predict(test_rows) == expected).all()
    assert (expected == -1).any() and (expected >= 0).any()
    far_away = test_rows[:1] + 1000.0
    assert estimator.predict(far_away).tolist() == [-1]


def test_pca_on_digits_keeps_the_expected_variance(trained, data, specs):
    job = trained["pca"]
    assert job["code"] == 0, job["log"]
    model_dir = job["job"] / "model"
    model, rows = preprocessed(model_dir, data["digits"]["train"])
    reference = PCA(n_components=20, random_state=0).fit(rows)
    assert job["metrics"]["train_explained_variance_ratio"] == pytest.approx(
        reference.explained_variance_ratio_.sum(), abs=1e-5
    )
    assert 0.85 < job["metrics"]["train_explained_variance_ratio"] < 0.95
    assert job["metrics"]["validation_explained_variance_ratio"] > 0.85
    assert job["metrics"]["train_trustworthiness"] > 0.95
    embedding = pd.read_parquet(model_dir / "embedding.parquet")
    assert list(embedding.columns) == [f"component_{i}" for i in range(1, 21)] + ["target"]
    assert np.allclose(
        embedding.iloc[:, :20].to_numpy(),
        model.transform(pd.read_parquet(data["digits"]["train"] / "data.parquet").drop(columns="target")),
    )
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert len(metadata["explained_variance_ratio"]) == 20
    assert metadata["trustworthiness_sample_size"] == {"train": len(embedding), "validation": 270}


def test_target_encoding_is_refused_by_the_container_with_the_field(trained):
    job = trained["target-encoding"]
    assert job["code"] == 1
    assert job["failure"].startswith("ValueError: preprocessing.encoding 'target' needs a target to predict")
    assert not (job["job"] / "model" / "model.joblib").exists()


def test_clustering_evaluation_reports_test_scores_sizes_and_plots(evaluated, trained, data):
    for name, dataset in (("kmeans", "iris"), ("dbscan", "wine")):
        result = evaluated[name]
        assert result["code"] == 0, result["log"]
        report = result["report"]
        model_dir = trained[name]["job"] / "model"
        model, test_rows = preprocessed(model_dir, data[dataset]["test"])
        predicted = model.named_steps["model"].predict(test_rows)
        kept = predicted != -1
        assert report["metrics"]["silhouette"] == pytest.approx(
            silhouette_score(test_rows[kept], predicted[kept])
        )
        assert report["metrics"]["noise_fraction"] == pytest.approx(1 - kept.mean())
        assert f"test_silhouette={report['metrics']['silhouette']:.6g}" in result["log"]
        assert report["train_metrics"]["silhouette"] == pytest.approx(
            trained[name]["metrics"]["train_silhouette"], abs=1e-5
        )
        training_labels = pd.read_parquet(model_dir / "labels.parquet")["cluster"]
        assert report["n_test"] == len(test_rows) and report["n_train"] == len(training_labels)
        sizes = training_labels.value_counts()
        assert report["cluster_sizes"] == {str(k): int(v) for k, v in sorted(sizes.items())}
        assert set(report["plots"]) == {"clusters", "cluster_sizes"}
        for relative in report["plots"].values():
            assert (result["job"] / "output" / relative).read_bytes().startswith(PNG_MAGIC)
        baseline = json.loads((result["job"] / "output" / report["baseline"]).read_text())
        assert baseline["target"] is None and "target" not in baseline["features"]
        assert -1 <= report["details"]["adjusted_rand_index_test"] <= 1
        assert set(report["gaps"]) == {"silhouette", "davies_bouldin"}
    assert evaluated["kmeans"]["report"]["metrics"]["silhouette"] > 0.5
    assert "-1" in evaluated["dbscan"]["report"]["cluster_sizes"]
    assert any("nearest core sample within eps" in note for note in evaluated["dbscan"]["report"]["notes"])


def test_pca_evaluation_scores_the_test_rows_and_draws_embedding_and_scree(evaluated, trained, data):
    result = evaluated["pca"]
    assert result["code"] == 0, result["log"]
    report = result["report"]
    model_dir = trained["pca"]["job"] / "model"
    model, test_rows = preprocessed(model_dir, data["digits"]["test"])
    pca = model.named_steps["model"]
    rebuilt = pca.inverse_transform(pca.transform(test_rows))
    expected = explained_variance_score(test_rows, rebuilt, multioutput="variance_weighted")
    assert report["metrics"]["explained_variance_ratio"] == pytest.approx(expected)
    assert (
        report["metrics"]["explained_variance_ratio"] >= 0.85 and report["metrics"]["trustworthiness"] >= 0.95
    )
    assert report["metrics_split"] == "test" and report["n_test"] == len(test_rows)
    assert report["details"]["explained_variance_ratio_per_component"] == pytest.approx(
        pca.explained_variance_ratio_
    )
    assert report["details"]["trustworthiness_rows_test"] == len(test_rows)
    assert set(report["plots"]) == {"embedding", "scree"}
    for relative in report["plots"].values():
        assert (result["job"] / "output" / relative).read_bytes().startswith(PNG_MAGIC)
    assert report["baseline"] == "baseline/baseline.json"


def test_dbscan_with_a_single_cluster_trains_with_a_warning_and_fails_evaluation_clearly(trained, evaluated):
    job = trained["one-cluster"]
    assert job["code"] == 0, job["log"]
    assert job["metrics"]["train_n_clusters"] == 1
    assert "train_silhouette" not in job["metrics"]
    assert "warning: the train rows form 1 cluster(s)" in job["log"]
    result = evaluated["one-cluster"]
    assert result["code"] == 1 and result["report"] is None
    first_line = result["failure"].splitlines()[0]
    assert first_line.startswith("ValueError: dbscan put the train rows in 1 cluster(s) with 0% noise")
    assert "need at least 2 clusters" in first_line
    assert "lower hyperparameters.eps (now 100.0) or raise hyperparameters.min_samples (now 5)" in first_line


@pytest.mark.slow
def test_tsne_on_digits_embeds_the_training_rows_only(data, specs):
    root = data["root"] / "tsne"
    job = finish(start_training(root / "train", specs["tsne"], data["digits"]), root / "train")
    assert job["code"] == 0, job["log"]
    assert job["metrics"]["train_trustworthiness"] > 0.9
    assert job["metrics"]["train_kl_divergence"] > 0
    assert not any(name.startswith("validation_") for name in job["metrics"])
    model_dir = root / "train" / "model"
    model = joblib.load(model_dir / "model.joblib")
    assert not hasattr(model, "transform") and not hasattr(model, "predict")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["predicts_new_rows"] is False and "no transform for new points" in metadata["note"]
    embedding = pd.read_parquet(model_dir / "embedding.parquet")
    assert embedding.shape == (metadata["n_train"], 3)  # component_1, component_2, target

    evaluation = finish(
        start_evaluation(root / "eval", model_dir, specs["tsne"], data["digits"]), root / "eval"
    )
    assert evaluation["code"] == 0, evaluation["log"]
    report = json.loads((root / "eval/output/report.json").read_text())
    assert report["metrics"]["trustworthiness"] == pytest.approx(
        job["metrics"]["train_trustworthiness"], abs=1e-5
    )
    assert report["metrics_split"] == "train" and report["n_test"] == 0 and report["baseline"] is None
    assert any("no transform for new points" in note for note in report["notes"])
    assert (root / "eval/output" / report["plots"]["embedding"]).read_bytes().startswith(PNG_MAGIC)

    refused = finish(
        start_evaluation(
            root / "eval-evr", model_dir, specs["tsne"], data["digits"], ["explained_variance_ratio"]
        ),
        root / "eval-evr",
    )
    assert refused["code"] == 1
    assert refused["failure"].startswith(
        "ValueError: cannot compute ['explained_variance_ratio'] on the train split"
    )


def test_clustering_without_a_label_column_trains_and_evaluates(trained, evaluated):
    job = trained["unlabelled"]
    assert job["code"] == 0, job["log"]
    model_dir = job["job"] / "model"
    assert list(pd.read_parquet(model_dir / "labels.parquet").columns) == ["cluster"]
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["target"] is None and len(metadata["feature_names"]) == 4
    # the same rows and seed as the labelled job: the label column never was a feature
    assert job["metrics"]["train_silhouette"] == pytest.approx(
        trained["kmeans"]["metrics"]["train_silhouette"]
    )
    result = evaluated["unlabelled"]
    assert result["code"] == 0, result["log"]
    assert not any(key.startswith("adjusted_rand_index") for key in result["report"]["details"])
    assert result["report"]["metrics"]["silhouette"] == pytest.approx(
        evaluated["kmeans"]["report"]["metrics"]["silhouette"]
    )
