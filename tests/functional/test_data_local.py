"""LocalDatasetBackend against real files in a tmp_path workspace."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mcp_server.backends.local.data import LocalDatasetBackend, path_from_uri
from mcp_server.core.jobs.preparation import check_sklearn_name
from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.schema import SpecValidationError, TrainingSpec, validate_spec
from mcp_server.errors import DatasetError
from mcp_server.settings import Settings


def make_spec(
    source: str,
    target: str | None = "target",
    task: str = "classification",
    split: dict[str, Any] | None = None,
    **preprocessing: Any,
) -> TrainingSpec:
    algorithm = "random_forest"
    dataset: dict[str, Any] = {"source": source, "target": target}
    if split:
        dataset["split"] = split
    return validate_spec(
        {
            "model_type": "supervised_learning",
            "task": task,
            "algorithm": algorithm,
            "dataset": dataset,
            "preprocessing": preprocessing,
        }
    )


def read_split(ref: DatasetRef, name: str) -> pd.DataFrame:
    return pd.read_parquet(path_from_uri(ref.splits[name]) / "data.parquet")


def animals(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Numeric, categorical and string-label columns; labels appear unsorted."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "weight": rng.normal(10, 2, n).round(3),
            "height": rng.normal(50, 5, n).round(3),
            "colour": rng.choice(["red", "green", "blue"], n),
            "species": rng.choice(["emu", "cat", "dog"], n),
        }
    )


@pytest.fixture
def backend(tmp_path: Path) -> LocalDatasetBackend:
    return LocalDatasetBackend(
        Settings(home=tmp_path / "ws", allow_write=True, data_roots=(tmp_path,)), base_dir=tmp_path
    )


def test_breast_cancer_split_sizes_stratification_and_files(backend: LocalDatasetBackend) -> None:
    ref = backend.prepare_dataset(make_spec("sklearn://breast_cancer"))
    # 569 rows: test = ceil(.15 * 569) = 86; validation = ceil(.15/.85 * 483) = 86; train = 397.
    assert ref.split_sizes == {"train": 397, "validation": 86, "test": 86}
    assert ref.rows_raw == 569
    assert ref.rows_removed == {"duplicates": 0, "missing": 0, "outliers": 0}
    assert ref.dataset_id == f"breast_cancer-{ref.data_version}"
    assert len(ref.data_version) == 12
    assert ref.class_labels == ["malignant", "benign"]  # sklearn's target_names of codes 0, 1
    assert ref.class_counts == {"malignant": 212, "benign": 357}
    assert len(ref.feature_names) == 30
    assert "target" not in ref.feature_names
    assert set(ref.feature_types.values()) == {"numeric"}
    overall = 212 / 569
    for name in ("train", "validation", "test"):
        frame = read_split(ref, name)
        assert len(frame) == ref.split_sizes[name]
        assert set(frame["target"].unique()) == {0, 1}
        assert abs((frame["target"] == 0).mean() - overall) < 0.02, name
    root = path_from_uri(ref.uri)
    assert (root / "raw" / "data.parquet").is_file()
    assert pd.read_parquet(root / "raw" / "data.parquet").shape == (569, 31)
    metadata = path_from_uri(ref.splits["test"]).parent / "metadata.json"
    assert DatasetRef.model_validate_json(metadata.read_text()) == ref


def test_iris_codes_labels_and_duplicates(backend: LocalDatasetBackend) -> None:
    ref = backend.prepare_dataset(make_spec("sklearn://iris"))
    assert ref.class_labels == ["setosa", "versicolor", "virginica"]
    assert ref.rows_removed["duplicates"] == 1  # iris has one duplicated row
    assert sum(ref.split_sizes.values()) == 149
    codes = pd.concat(read_split(ref, n)["target"] for n in ref.splits)
    assert sorted(codes.unique()) == [0, 1, 2]
    assert codes.dtype == "int64"


def test_csv_string_target_missing_values_and_duplicates(
    backend: LocalDatasetBackend, tmp_path: Path
) -> None:
    frame = animals()
    frame.loc[[3, 7], "weight"] = np.nan  # two rows with a missing feature
    frame.loc[11, "species"] = None  # one row without a label
    frame = pd.concat([frame, frame.iloc[[20, 21, 22]]], ignore_index=True)  # three duplicates
    frame.to_csv(tmp_path / "animals.csv", index=False)
    cleaned = frame.drop_duplicates().dropna()
    ref = backend.prepare_dataset(make_spec("file://animals.csv", "species", missing_values="drop"))
    assert ref.rows_raw == 123
    assert ref.rows_removed == {"duplicates": 3, "missing": 3, "outliers": 0}
    assert ref.class_labels == ["cat", "dog", "emu"]
    assert ref.class_counts == cleaned["species"].value_counts().to_dict()
    assert ref.feature_names == ["weight", "height", "colour"]
    assert ref.feature_types == {"weight": "numeric", "height": "numeric", "colour": "categorical"}
    assert sum(ref.split_sizes.values()) == len(cleaned) == 117
    train = read_split(ref, "train")
    assert sorted(train["species"].unique()) == [0, 1, 2]
    assert train["weight"].notna().all()
    # code c must be the c-th label: check through a column that identifies rows.
    merged = train.merge(cleaned, on=["weight", "height", "colour"], suffixes=("_code", ""))
    assert (merged["species"] == [ref.class_labels[c] for c in merged["species_code"]]).all()


def test_imputed_missing_values_keep_rows_but_not_unlabelled_ones(
    backend: LocalDatasetBackend, tmp_path: Path
) -> None:
    frame = animals()
    frame.loc[[3, 7], "weight"] = np.nan
    frame.loc[11, "species"] = None
    frame.to_csv(tmp_path / "animals.csv", index=False)
    ref = backend.prepare_dataset(make_spec("file://animals.csv", "species", missing_values="median"))
    assert ref.rows_removed["missing"] == 1
    stored = pd.concat(read_split(ref, n) for n in ref.splits)
    assert stored["weight"].isna().sum() == 2  # imputation is the training pipeline's job


def test_data_version_is_stable_and_follows_the_values(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    other = LocalDatasetBackend(
        Settings(home=tmp_path / "other", allow_write=True, data_roots=(tmp_path,)), base_dir=tmp_path
    )
    first = backend.prepare_dataset(make_spec("sklearn://wine"))
    assert other.prepare_dataset(make_spec("sklearn://wine")).data_version == first.data_version
    frame = animals()
    frame.to_csv(tmp_path / "a.csv", index=False)
    spec = make_spec("file://a.csv", "species")
    before = backend.prepare_dataset(spec)
    (tmp_path / "copy").mkdir()
    shutil.copy(tmp_path / "a.csv", tmp_path / "copy" / "a.csv")  # the content decides, not the path
    assert (
        other.prepare_dataset(make_spec("file://copy/a.csv", "species")).data_version == before.data_version
    )
    frame.loc[5, "height"] += 0.001
    frame.to_csv(tmp_path / "a.csv", index=False)
    after = backend.prepare_dataset(spec)
    assert after.data_version != before.data_version
    assert after.dataset_id == f"a-{after.data_version}"


def test_prepare_is_idempotent_and_split_settings_do_not_collide(backend: LocalDatasetBackend) -> None:
    spec = make_spec("sklearn://iris")
    first = backend.prepare_dataset(spec)
    test_file = path_from_uri(first.splits["test"]) / "data.parquet"
    stamp = test_file.stat().st_mtime_ns
    assert backend.prepare_dataset(spec) == first
    assert test_file.stat().st_mtime_ns == stamp
    other = backend.prepare_dataset(
        make_spec("sklearn://iris", split={"train": 0.8, "validation": 0, "test": 0.2, "seed": 7})
    )
    assert other.dataset_id == first.dataset_id
    assert set(other.splits) == {"train", "test"}  # validation 0: no validation split
    assert other.splits["test"] != first.splits["test"]
    assert other.split_sizes == {"train": 119, "test": 30}
    assert backend.prepare_dataset(spec) == first  # the first split is still there, untouched


def test_outliers_are_removed_from_train_only(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    frame = animals(200)
    frame.loc[range(0, 200, 20), "weight"] = 1e6  # ten extreme rows
    frame.to_csv(tmp_path / "animals.csv", index=False)
    plain = backend.prepare_dataset(make_spec("file://animals.csv", "species"))
    cleaned = backend.prepare_dataset(
        make_spec("file://animals.csv", "species", outliers={"method": "iqr", "factor": 1.5})
    )
    for name in ("validation", "test"):
        pd.testing.assert_frame_equal(read_split(plain, name), read_split(cleaned, name))
    train_before, train_after = read_split(plain, "train"), read_split(cleaned, "train")
    assert (train_before["weight"] == 1e6).sum() > 0
    assert (train_after["weight"] == 1e6).sum() == 0
    held_out = pd.concat([read_split(cleaned, "validation"), read_split(cleaned, "test")])
    assert (held_out["weight"] == 1e6).sum() == 10 - (train_before["weight"] == 1e6).sum()
    removed = cleaned.rows_removed["outliers"]
    assert removed >= (train_before["weight"] == 1e6).sum()
    assert cleaned.split_sizes["train"] == len(train_before) - removed == len(train_after)


def test_zscore_outliers(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    frame = animals(200)
    frame.loc[[0, 1, 2, 3, 4, 5], "height"] = 500.0
    frame.to_csv(tmp_path / "animals.csv", index=False)
    ref = backend.prepare_dataset(
        make_spec(
            "file://animals.csv",
            "species",
            split={"stratify": False},
            outliers={"method": "zscore", "factor": 3},
        )
    )
    assert ref.rows_removed["outliers"] >= 1
    assert read_split(ref, "train")["height"].max() < 500


def test_absolute_file_uri_and_parquet(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    path = tmp_path / "sub dir" / "animals.parquet"
    path.parent.mkdir()
    animals().to_parquet(path)
    ref = backend.prepare_dataset(make_spec(path.as_uri(), "species"))
    assert ref.rows_raw == 120
    assert ref.name == "animals"


def test_regression_keeps_numeric_target(backend: LocalDatasetBackend) -> None:
    ref = backend.prepare_dataset(make_spec("sklearn://diabetes", task="regression"))
    assert ref.class_labels is None
    assert ref.class_counts is None
    assert read_split(ref, "train")["target"].dtype == "float64"
    assert sum(ref.split_sizes.values()) == 442


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_missing_file(backend: LocalDatasetBackend) -> None:
    with pytest.raises(DatasetError, match=r"file://nope\.csv: file .*nope\.csv does not exist"):
        backend.prepare_dataset(make_spec("file://nope.csv", "species"))


def test_unreadable_file(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DatasetError, match=r"cannot read .*broken\.parquet.*valid Parquet file"):
        backend.prepare_dataset(make_spec("file://broken.parquet", "species"))


def test_target_not_a_column(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    animals().to_csv(tmp_path / "animals.csv", index=False)
    with pytest.raises(
        DatasetError,
        match=r"'specie' is not a column .*did you mean 'species'.*"
        r"available columns: weight, height, colour, species",
    ):
        backend.prepare_dataset(make_spec("file://animals.csv", "specie"))


def test_too_few_rows(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    animals(2).to_csv(tmp_path / "tiny.csv", index=False)
    expected = r"has 2 usable rows, too few for the split \(train 0, validation 1, test 1 rows\)"
    with pytest.raises(DatasetError, match=expected):
        backend.prepare_dataset(make_spec("file://tiny.csv", "species", split={"stratify": False}))


def test_class_too_small_to_stratify(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    frame = animals()
    frame.loc[0, "species"] = "yak"
    frame.to_csv(tmp_path / "animals.csv", index=False)
    with pytest.raises(DatasetError, match=r"fewer than 3 rows.*'yak': 1.*stratify: false"):
        backend.prepare_dataset(make_spec("file://animals.csv", "species"))
    ref = backend.prepare_dataset(make_spec("file://animals.csv", "species", split={"stratify": False}))
    assert "yak" in ref.class_labels


def test_regression_target_must_be_numeric(backend: LocalDatasetBackend, tmp_path: Path) -> None:
    animals().to_csv(tmp_path / "animals.csv", index=False)
    with pytest.raises(DatasetError, match=r"'species' must be numeric for regression"):
        backend.prepare_dataset(make_spec("file://animals.csv", "species", task="regression"))


def test_unknown_sklearn_dataset() -> None:
    with pytest.raises(DatasetError, match=r"sklearn://iriss: unknown .*did you mean 'iris'"):
        check_sklearn_name("iriss")


# ---------------------------------------------------------------------------------------------
# Confinement: file:// sources read only under the data roots
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def confined(tmp_path: Path) -> tuple[LocalDatasetBackend, Path]:
    """A backend whose project folder is tmp_path/project, and a private file outside it."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    animals().to_csv(project / "data" / "animals.csv", index=False)
    private = tmp_path / "private"
    private.mkdir()
    pd.DataFrame({"secret_column": [1.0, 2.5, 3.5] * 10, "x": range(30)}).to_csv(
        private / "secret.csv", index=False
    )
    return LocalDatasetBackend(Settings(home=tmp_path / "ws", allow_write=True), base_dir=project), private


def test_project_data_folder_is_readable(confined) -> None:
    backend, _ = confined
    assert backend.prepare_dataset(make_spec("file://data/animals.csv", "species")).rows_raw == 120


def test_outside_file_is_refused_without_revealing_it(confined) -> None:
    backend, private = confined
    messages = []
    for path in (private / "secret.csv", private / "absent.csv"):
        with pytest.raises(DatasetError) as caught:
            backend.prepare_dataset(make_spec(path.as_uri(), "wrong_target"))
        messages.append(str(caught.value).replace(path.as_uri(), "SOURCE"))
    assert messages[0] == messages[1]  # existing or not, the same answer
    assert "secret_column" not in messages[0] and "does not exist" not in messages[0]
    assert "not in an allowed data folder" in messages[0] and "MLOPS_DATA_ROOTS" in messages[0]


def test_symlink_out_of_a_data_folder_is_refused(confined) -> None:
    backend, private = confined
    link = backend.data_roots[0] / "link.csv"
    link.symlink_to(private / "secret.csv")
    with pytest.raises(DatasetError, match="not in an allowed data folder"):
        backend.prepare_dataset(make_spec("file://data/link.csv", "secret_column"))


@pytest.mark.parametrize(
    "source",
    [
        "file://data/../../private/secret.csv",
        "file://data/%2e%2e/%2E%2E/private/secret.csv",
        "file://..%2Fx.csv",
    ],
)
def test_climbing_out_is_a_spec_error(source: str) -> None:
    with pytest.raises(SpecValidationError) as caught:
        make_spec(source, "secret_column")
    (error,) = caught.value.errors
    assert error.path == "dataset.source" and "may not climb out" in error.message


def test_data_roots_from_the_environment_allow_a_folder(confined, tmp_path: Path) -> None:
    _, private = confined
    settings = Settings.from_env(
        {"MLOPS_HOME": str(tmp_path / "ws"), "MLOPS_DATA_ROOTS": f"{private}:/nowhere"}
    )
    assert settings.data_roots == (private, Path("/nowhere"))
    backend = LocalDatasetBackend(settings, base_dir=tmp_path / "project")
    assert (
        backend.prepare_dataset(make_spec((private / "secret.csv").as_uri(), "secret_column")).rows_raw == 30
    )


def _feedback(backend: LocalDatasetBackend, frame: pd.DataFrame, job: str = "mon-x-1") -> str:
    """Write ``frame`` where a monitoring job writes its labelled captured rows; its URI."""
    path = backend._settings.home / "monitoring" / "x" / "jobs" / job / "output" / "feedback.parquet"
    path.parent.mkdir(parents=True)
    frame.to_parquet(path, index=False)
    return path.as_uri()


def test_feedback_rows_join_the_data_and_a_label_outside_the_targets_type_is_dropped(
    backend: LocalDatasetBackend, tmp_path: Path
) -> None:
    frame = animals()
    frame["size"] = frame["weight"].round().astype(int) % 3  # an integer target
    frame.drop(columns="species").to_csv(tmp_path / "sized.csv", index=False)
    spec = make_spec("file://sized.csv", "size")
    before = backend.prepare_dataset(spec)
    # the labelled captured rows: labels are text; one is not an integer, one feature is missing
    labelled = animals(12, seed=7).drop(columns=["species", "colour"])
    labelled["size"] = ["0", "1", "2"] * 3 + ["1", "2", "big"]
    after = backend.prepare_dataset(spec, _feedback(backend, labelled))
    assert (after.rows_raw, after.rows_feedback) == (before.rows_raw + 11, 11)
    assert after.rows_removed["feedback"] == 1
    assert after.data_version != before.data_version
    rows = pd.concat(read_split(after, name) for name in after.splits)
    added = rows[rows["weight"].isin(labelled["weight"])]
    assert len(added) == 11 and added["colour"].isna().all()  # the captured rows lacked colour
    assert after.class_labels == ["0", "1", "2"]
    assert (
        backend.prepare_dataset(spec, _feedback(backend, labelled, "mon-x-2")) == after
    )  # same rows: same data


def test_feedback_labels_may_name_a_scikit_learn_datasets_classes(backend: LocalDatasetBackend) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    labelled = iris.frame.iloc[:6].copy()
    labelled[iris.frame.columns[:4]] += 0.05  # not duplicates of the source's rows
    labelled["target"] = ["setosa", "setosa", "2", "virginica", "versicolor", "nope"]
    ref = backend.prepare_dataset(make_spec("sklearn://iris"), _feedback(backend, labelled))
    assert ref.rows_feedback == 5 and ref.rows_removed["feedback"] == 1
    assert ref.class_counts == {
        "setosa": 52,
        "versicolor": 51,
        "virginica": 51,
    }  # iris: 50 each, one duplicate


@pytest.mark.parametrize("where", ["outside", "not-parquet", "missing", "not-a-file-uri"])
def test_feedback_from_anywhere_but_a_monitoring_job_is_refused(
    backend: LocalDatasetBackend, tmp_path: Path, where: str
) -> None:
    monitoring = backend._settings.home / "monitoring"
    monitoring.mkdir(parents=True)
    uri = {
        "outside": (tmp_path / "elsewhere.parquet").as_uri(),
        "not-parquet": (monitoring / "feedback.csv").as_uri(),
        "missing": (monitoring / "gone.parquet").as_uri(),
        "not-a-file-uri": "s3://bucket/monitoring/feedback.parquet",
    }[where]
    animals().to_parquet(tmp_path / "elsewhere.parquet")
    (monitoring / "feedback.csv").write_text("a,b\n")
    with pytest.raises(DatasetError, match="feedback"):
        backend.prepare_dataset(make_spec("sklearn://iris"), uri)
