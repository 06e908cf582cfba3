"""The data preparation program as a processing job: real DuckDB, real files, a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from training_containers.preparation import engine

SPLIT = {"train": 0.7, "validation": 0.15, "test": 0.15, "seed": 42, "stratify": True}


def run_job(root: Path, data: Path | None = None, **config: Any) -> subprocess.CompletedProcess[str]:
    """Run the program under the processing contract in ``root``; mount ``data`` as input/data/."""
    (root / "input" / "config").mkdir(parents=True, exist_ok=True)
    if data is not None:
        (root / "input" / "data").mkdir(parents=True, exist_ok=True)
        (root / "input" / "data" / data.name).symlink_to(data)
        config.setdefault("input", f"data/{data.name}")
    body = {"preparation_id": "prepare-test", "split": SPLIT, **config}
    (root / "input" / "config" / "preparation.json").write_text(json.dumps(body))
    env = {**os.environ, "MLOPS_PROCESSING_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "training_containers.preparation.prepare"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def result(root: Path) -> dict[str, Any]:
    return json.loads((root / "output" / "dataset.json").read_text())


def split(root: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(root / "output" / name / "data.parquet")


def animals(path: Path, rows: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "weight": rng.normal(10, 2, rows).round(3),
            "height": rng.normal(50, 5, rows).round(3),
            "colour": rng.choice(["red", "green"], rows),
            "species": rng.choice(["dog", "cat", "emu"], rows),
        }
    )
    frame.to_csv(path, index=False)
    return path


def test_iris_is_versioned_deduplicated_stratified_and_labelled(tmp_path: Path) -> None:
    done = run_job(tmp_path, source="sklearn://iris", sklearn="iris", task="classification", target="target")
    assert done.returncode == 0, done.stderr
    body = result(tmp_path)
    assert body["rows_raw"] == 150
    assert body["rows_removed"] == {"duplicates": 1, "missing": 0, "outliers": 0}
    assert body["class_labels"] == ["setosa", "versicolor", "virginica"]
    # 149 rows: test ceil(0.15 * 149) = 23, validation ceil(0.15 / 0.85 * 126) = 23, train the rest
    assert body["split_sizes"] == {"train": 103, "validation": 23, "test": 23}
    assert len(body["data_version"]) == 12
    for name, size in body["split_sizes"].items():
        frame = split(tmp_path, name)
        assert len(frame) == size
        assert frame["target"].dtype == "int64"
        shares = frame["target"].value_counts(normalize=True)
        assert set(shares.index) == {0, 1, 2}  # every class in every split
        assert shares.max() - shares.min() < 0.1, name
    raw = pd.read_parquet(tmp_path / "output" / "raw" / "data.parquet")
    assert raw.shape == (150, 5)


def test_the_same_input_gives_the_same_version_and_splits(tmp_path: Path) -> None:
    csv = animals(tmp_path / "animals.csv")
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):
        assert (
            run_job(
                root, csv, source="file://animals.csv", task="classification", target="species"
            ).returncode
            == 0
        )
    assert result(first)["data_version"] == result(second)["data_version"]
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(split(first, name), split(second, name))
    # the splits are disjoint, cover every row, and are shuffled (not in the file's order)
    rows = pd.concat([split(first, n) for n in ("train", "validation", "test")])
    assert len(rows) == 120 and not rows.duplicated().any()
    original = pd.read_csv(csv)
    assert (
        not split(first, "train")["weight"]
        .reset_index(drop=True)
        .equals(original["weight"][: len(split(first, "train"))])
    )

    changed = tmp_path / "changed" / "animals.csv"
    changed.parent.mkdir()
    original.assign(weight=original["weight"].where(original.index != 5, 99.0)).to_csv(changed, index=False)
    third = tmp_path / "c"
    assert (
        run_job(
            third, changed, source="file://animals.csv", task="classification", target="species"
        ).returncode
        == 0
    )
    assert result(third)["data_version"] != result(first)["data_version"]

    other_seed = tmp_path / "d"
    seeded = {**SPLIT, "seed": 7}
    done = run_job(
        other_seed, csv, source="file://animals.csv", task="classification", target="species", split=seeded
    )
    assert done.returncode == 0
    assert result(other_seed)["data_version"] == result(first)["data_version"]
    assert not split(other_seed, "test").equals(split(first, "test"))


def test_missing_values_duplicates_and_string_labels(tmp_path: Path) -> None:
    csv = tmp_path / "pets.csv"
    lines = ["weight,colour,species", "1.5,red,dog", "1.5,red,dog", "NA,blue,cat", "2.0,,emu", "3.0,red,"]
    lines += [f"{i}.25,red,{['dog', 'cat', 'emu'][i % 3]}" for i in range(30)]
    csv.write_text("\n".join(lines) + "\n")
    kept = tmp_path / "kept"
    assert (
        run_job(kept, csv, source="file://pets.csv", task="classification", target="species").returncode == 0
    )
    body = result(kept)
    # one duplicate; the unlabelled row is dropped, the rows missing a feature are kept
    assert body["rows_removed"] == {"duplicates": 1, "missing": 1, "outliers": 0}
    assert body["class_labels"] == ["cat", "dog", "emu"]
    assert body["feature_types"] == {"weight": "numeric", "colour": "categorical"}
    rows = pd.concat([split(kept, n) for n in ("train", "validation", "test")])
    assert rows["weight"].isna().sum() == 1 and rows["colour"].isna().sum() == 1
    assert sorted(rows["species"].unique()) == [0, 1, 2]

    dropped = tmp_path / "dropped"
    done = run_job(
        dropped, csv, source="file://pets.csv", task="classification", target="species", drop_missing=True
    )
    assert done.returncode == 0
    assert result(dropped)["rows_removed"] == {"duplicates": 1, "missing": 3, "outliers": 0}


def test_duplicates_are_found_by_value_with_nulls_nans_and_signed_zeros_equal(tmp_path: Path) -> None:
    csv = tmp_path / "repeats.csv"
    lines = ["x,y,note,label"]
    lines += ["1.5,,a,0", "1.5,,a,0", "1.5,,a,0"]  # three copies with a NULL: two dropped
    lines += ["nan,2,b,1", "NaN,2,b,1"]  # NaN equals NaN, as pandas reads both
    lines += ["0.0,3,c,0", "-0.0,3,c,0"]  # 0.0 equals -0.0
    lines += ["1.5,,a,1", "1.5,1,a,0", "1.5,,A,0"]  # one value apart from the first rows: kept
    lines += [f"{i}.5,{i},n,{i % 2}" for i in range(40)]
    csv.write_text("\n".join(lines) + "\n")
    done = run_job(tmp_path / "job", csv, source="file://repeats.csv", task="classification", target="label")
    assert done.returncode == 0, done.stderr
    body = result(tmp_path / "job")
    expected = len(pd.read_csv(csv)) - len(pd.read_csv(csv).drop_duplicates())
    assert body["rows_removed"]["duplicates"] == expected == 4
    rows = pd.concat([split(tmp_path / "job", n) for n in ("train", "validation", "test")])
    assert len(rows) == len(lines) - 1 - 4 and not rows.duplicated().any()


def test_a_value_late_in_the_file_that_changes_the_type_is_read(tmp_path: Path) -> None:
    csv = tmp_path / "late.csv"
    rows = [f"{i},{i % 2}" for i in range(30_000)] + ["unknown,1"]
    csv.write_text("code,label\n" + "\n".join(rows) + "\n")
    done = run_job(tmp_path, csv, source="file://late.csv", task="classification", target="label")
    assert done.returncode == 0, done.stderr
    assert result(tmp_path)["feature_types"] == {"code": "categorical"}
    assert result(tmp_path)["rows_raw"] == 30_001


def test_iqr_outliers_use_exact_quartiles_in_memory_and_out_of_core(tmp_path: Path) -> None:
    import duckdb

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=2001), "b": rng.exponential(size=2001)})
    frame.loc[::97, "a"] = np.nan
    connection = duckdb.connect()
    connection.register("frame", frame.assign(__split="train"))
    connection.execute("CREATE TABLE parts AS SELECT * FROM frame")
    features = [("a", "DOUBLE"), ("b", "DOUBLE")]
    spread = {"method": "iqr", "factor": 1.5}
    in_memory = engine._all_quartiles(connection, ["a", "b"])
    for name in ("a", "b"):
        value = f"CAST({engine.ident(name)} AS DOUBLE)"
        by_sort = engine._quartiles(connection, value, f"{value} IS NOT NULL AND NOT isnan({value})")
        expected = frame[name].quantile([0.25, 0.75]).tolist()  # pandas' linear interpolation
        assert in_memory[name] == pytest.approx(expected, rel=1e-12)
        assert by_sort == pytest.approx(expected, rel=1e-12)
    values = frame.dropna()
    fences = {}
    for name in ("a", "b"):
        q1, q3 = frame[name].quantile([0.25, 0.75])
        fences[name] = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1))
    outside = sum(((frame[n] < lo) | (frame[n] > hi)).to_numpy() for n, (lo, hi) in fences.items()).astype(
        bool
    )
    assert len(values) < len(frame)  # NaN rows are kept, not counted as outliers
    for values_in_memory in (0, 10**6):  # the sort path, then the aggregates
        engine.keep_rows(connection, features, spread, values_in_memory=values_in_memory)
        kept = connection.execute("SELECT count(*) FROM kept").fetchall()[0][0]
        assert len(frame) - kept == int(outside.sum()) > 0
        connection.execute("DROP VIEW kept")


def test_out_of_core_under_a_small_memory_limit_gives_the_same_result(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = 300_000
    frame = pd.DataFrame(rng.normal(size=(rows, 6)).round(4), columns=[f"x{i}" for i in range(6)])
    frame["label"] = (frame["x0"] > 0).astype(int)
    csv = tmp_path / "big.csv"
    frame.to_csv(csv, index=False)
    outliers = {"method": "iqr", "factor": 1.5}
    small, large = tmp_path / "small", tmp_path / "large"
    common = {"source": "file://big.csv", "task": "classification", "target": "label", "outliers": outliers}
    assert run_job(small, csv, memory_limit_mb=40, threads=1, **common).returncode == 0
    assert run_job(large, csv, memory_limit_mb=1024, **common).returncode == 0
    assert result(small)["data_version"] == result(large)["data_version"]
    assert result(small)["rows_removed"] == result(large)["rows_removed"]
    assert result(small)["rows_removed"]["outliers"] > 0
    for name in ("train", "test"):
        pd.testing.assert_frame_equal(split(small, name), split(large, name))


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"target": "specie"},
            r"^DataError: dataset.target 'specie' is not a column .*did you mean 'species'",
        ),
        ({"target": "colour", "task": "regression"}, r"^DataError: dataset.target 'colour' must be numeric"),
        (
            {"split": {**SPLIT, "test": 0.999, "train": 0.0005, "validation": 0.0005}},
            r"too few for the split",
        ),
    ],
)
def test_data_the_spec_cannot_use_is_a_data_error(
    tmp_path: Path, config: dict[str, Any], expected: str
) -> None:
    csv = animals(tmp_path / "animals.csv", rows=20)
    body = {"source": "file://animals.csv", "task": "classification", "target": "species", **config}
    done = run_job(tmp_path / "job", csv, **body)
    assert done.returncode == 1
    failure = (tmp_path / "job" / "output" / "failure").read_text()
    assert __import__("re").search(expected, failure.split("\n\n", 1)[0]), failure
    assert not (tmp_path / "job" / "output" / "dataset.json").exists()


def test_a_broken_parquet_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    done = run_job(
        tmp_path / "job", broken, source="file://broken.parquet", task="classification", target="y"
    )
    assert done.returncode == 1
    headline = (tmp_path / "job" / "output" / "failure").read_text().split("\n\n", 1)[0]
    assert headline.startswith("DataError: dataset.source file://broken.parquet: cannot read broken.parquet")
    assert "valid Parquet file" in headline
