"""Data preparation program: a dataset source in, its version and its splits out.

A job under the SageMaker Processing contract (root ``/opt/ml/processing``, moved by
``MLOPS_PROCESSING_ROOT``):

- ``input/config/preparation.json``: the configuration (``PreparationConfig``);
- ``input/data/<file>``: the source file (CSV, optionally compressed, or Parquet), unless the
  source is one of scikit-learn's shipped datasets, which the program loads itself;
- ``output/raw/data.parquet``: the data as loaded;
- ``output/{train,validation,test}/data.parquet``: the splits (no validation when its
  fraction is 0);
- ``output/dataset.json``, written last and atomically (its presence means the job completed):
  ``data_version``, ``target``, ``rows_raw``, ``split_sizes``, ``feature_names``,
  ``feature_types``, ``class_labels``, ``class_counts``, ``rows_removed``, ``engine`` and
  ``duration_s`` (seconds);
- ``output/failure`` when it fails: ``"DataError: message"`` for data the spec cannot use, any
  other type for a fault, then the traceback's tail; exit status 1.

The work is done by ``engine`` in a DuckDB database under a scratch folder of the root, with a
memory limit of ``memory_limit_mb`` MiB (what does not fit is spilled to disk). Run it as
``python -m training_containers.preparation.prepare``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from training_containers.common.contract import run_reporting_failures
from training_containers.preparation import engine
from training_containers.preparation.engine import DataError, PreparationOptions, SplitOptions

DEFAULT_ROOT = "/opt/ml/processing"
RESULT = "dataset.json"
#: scikit-learn datasets the program loads (they ship inside scikit-learn; nothing is downloaded).
SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")


@dataclass(frozen=True)
class PreparationConfig:
    """The content of ``input/config/preparation.json``.

    Attributes:
        preparation_id: the job's name.
        source: the spec's ``dataset.source`` (quoted in messages).
        input: the source file, relative to ``input/`` (``data/train.csv``), or None.
        sklearn: the name of a scikit-learn dataset to load instead of a file, or None.
        task: the spec's task.
        target: the label column, or None.
        split: ``dataset.split`` (fractions, seed, stratify).
        drop_duplicates: ``preprocessing.drop_duplicates``.
        drop_missing: ``preprocessing.missing_values == "drop"``.
        outliers: ``preprocessing.outliers`` (``method``, ``factor``) or None.
        feedback: labelled captured rows to append (``retraining.feedback``), relative to
            ``input/`` (``feedback/feedback.parquet``), or None.
        memory_limit_mb: DuckDB's memory limit, MiB; the process's peak RSS is about 220 MiB more
            (about 850 MB under the default 640 MiB in benchmarks/prepare_throughput.py).
        threads: DuckDB's threads (None: one per core).
    """

    preparation_id: str
    source: str
    task: str
    input: str | None = None
    sklearn: str | None = None
    target: str | None = None
    split: dict[str, Any] = field(default_factory=dict)
    drop_duplicates: bool = True
    drop_missing: bool = False
    outliers: dict[str, Any] | None = None
    feedback: str | None = None
    memory_limit_mb: int = 640
    threads: int | None = None

    @classmethod
    def read(cls, path: Path) -> PreparationConfig:
        """Read the configuration file.

        Raises:
            FileNotFoundError: the file is missing.
            ValueError: it is not JSON or lacks a required field.
        """
        body = json.loads(path.read_text())
        known = {name: body[name] for name in cls.__dataclass_fields__ if name in body}
        try:
            return cls(**known)
        except TypeError as err:
            raise ValueError(f"{path}: {err}") from err


def processing_root(environ: Mapping[str, str] | None = None) -> Path:
    """The contract's root: ``MLOPS_PROCESSING_ROOT``, else ``/opt/ml/processing``."""
    env = os.environ if environ is None else environ
    return Path(env.get("MLOPS_PROCESSING_ROOT") or DEFAULT_ROOT)


def prepare(config: PreparationConfig, root: Path) -> dict[str, Any]:
    """Prepare the configured source into ``root/output``; return the content of ``dataset.json``.

    Raises:
        DataError: the data cannot be prepared as configured (see ``engine``).
    """
    started = time.perf_counter()
    output = root / "output"
    label_names = None
    with tempfile.TemporaryDirectory(dir=root, prefix="scratch-") as scratch_dir:
        scratch = Path(scratch_dir)
        connection = engine.connect(scratch, config.memory_limit_mb, config.threads)
        try:
            if config.sklearn:
                label_names = _load_sklearn(connection, config.sklearn, config.source)
            else:
                if not config.input:
                    raise DataError(f"dataset.source {config.source}: no input file was mounted")
                engine.load_file(connection, root / "input" / config.input, config.source, scratch)
            target = config.target
            appended = dropped = 0
            if config.feedback:
                appended, dropped = engine.append_feedback(
                    connection, root / "input" / config.feedback, target, label_names
                )
            drop = ("target",) if target is None and config.sklearn else ()
            options = PreparationOptions(
                source=config.source,
                task=config.task,
                target=target,
                split=SplitOptions(**config.split),
                drop_duplicates=config.drop_duplicates,
                drop_missing=config.drop_missing,
                outliers=config.outliers,
                drop_columns=drop,
                label_names=label_names,
            )
            result = _prepare_loaded(connection, options, output, config.memory_limit_mb)
            result["rows_feedback"] = appended
            if dropped:
                result["rows_removed"]["feedback"] = dropped
        finally:
            connection.close()
    result["duration_s"] = round(time.perf_counter() - started, 3)
    return result


def _load_sklearn(connection: duckdb.DuckDBPyConnection, name: str, source: str) -> list[str] | None:
    """Load one of scikit-learn's shipped datasets as table ``raw``; return its class names or None."""
    if name not in SKLEARN_DATASETS:
        raise DataError(
            f"dataset.source {source}: unknown scikit-learn dataset; available: {', '.join(SKLEARN_DATASETS)}"
        )
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    connection.register("loaded", bunch.frame)
    connection.execute("CREATE TABLE raw AS SELECT * FROM loaded")
    connection.unregister("loaded")
    names = getattr(bunch, "target_names", None)
    return None if names is None else [str(n) for n in names]


def _prepare_loaded(
    connection: duckdb.DuckDBPyConnection, options: PreparationOptions, output: Path, memory_limit_mb: int
) -> dict[str, Any]:
    """Every step after loading (see ``engine``); writes the Parquet files; returns the result."""
    raw_columns = engine.columns(connection, "raw")
    rows_raw = engine.count(connection, "SELECT count(*) FROM raw")
    engine.check_loaded(raw_columns, rows_raw, options)
    engine.compact(connection)
    version = engine.data_version(connection, raw_columns)
    engine.write_parquet(connection, "SELECT * FROM raw", output / "raw" / "data.parquet")
    connection.execute("SET preserve_insertion_order = false")  # rows carry their position in __row
    removed = engine.clean(connection, raw_columns, options)
    target = options.target
    kinds = dict(raw_columns)
    labels = None
    if options.task == "classification" and target is not None:
        labels = engine.encode_labels(connection, target, kinds[target], options.label_names)
    else:
        if options.task == "regression" and target is not None and not engine.is_numeric(kinds[target]):
            raise DataError(
                f"dataset.target {target!r} must be numeric for regression "
                f"(type {kinds[target]}); use task: classification for labels"
            )
        engine.keep_target(connection)
    removed = engine.count_missing(connection, removed)
    connection.execute("DROP VIEW clean; DROP TABLE IF EXISTS later_duplicates")  # what usable holds now
    stratify = options.task == "classification" and options.split.stratify and target is not None
    sizes = engine.check_split(connection, options, labels, stratify)
    connection.execute("SET preserve_insertion_order = true")  # parts is stored, and read, in __pos order
    engine.assign_splits(connection, options, sizes, stratify, labelled=labels is not None)
    connection.execute("DROP TABLE raw; DROP TABLE usable; DROP TABLE placed")  # what parts holds now
    features = [
        (name, kind) for name, kind in raw_columns if name != target and name not in options.drop_columns
    ]
    engine.keep_rows(connection, features, options.outliers, values_in_memory=memory_limit_mb * 2**20 // 32)
    final_sizes, class_counts = engine.kept_counts(connection, target, labels)
    if options.outliers is not None:
        removed["outliers"] = sizes["train"] - final_sizes.get("train", 0)
        if not final_sizes.get("train"):
            raise DataError(
                f"outlier removal ({options.outliers['method']}, factor {options.outliers['factor']}) "
                "left no training rows; raise preprocessing.outliers.factor"
            )
    kept = ", ".join(engine.ident(name) for name, _ in raw_columns if name not in options.drop_columns)
    for name in sizes:
        query = f"SELECT {kept} FROM kept WHERE __split = {engine.literal(name)}"  # stored in __pos order
        engine.write_parquet(connection, query, output / name / "data.parquet")
    return {
        "data_version": version,
        "target": target,
        "rows_raw": rows_raw,
        "split_sizes": {name: int(final_sizes.get(name, 0)) for name in sizes},
        "feature_names": [name for name, _ in features],
        "feature_types": {
            name: "numeric" if engine.is_numeric(kind) else "categorical" for name, kind in features
        },
        "class_labels": labels,
        "class_counts": class_counts,
        "rows_removed": removed,
        "engine": f"duckdb {duckdb.__version__}",
    }


def write_result(root: Path, result: dict[str, Any]) -> None:
    """Write ``output/dataset.json`` atomically (a reader never sees it half-written)."""
    path = root / "output" / RESULT
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{RESULT}.partial")
    partial.write_text(json.dumps(result, indent=2))
    partial.replace(path)


def write_failure(root: Path, text: str) -> None:
    """Write ``output/failure`` (the failure protocol of ``common.contract``)."""
    (root / "output").mkdir(parents=True, exist_ok=True)
    (root / "output" / "failure").write_text(text)


def main() -> None:
    """Read the configuration, prepare the data, write ``dataset.json``."""
    root = processing_root()
    config = PreparationConfig.read(root / "input" / "config" / "preparation.json")
    result = prepare(config, root)
    write_result(root, result)
    sys.stdout.write(
        f"preparation {config.preparation_id}: data version {result['data_version']}, "
        f"splits {result['split_sizes']}, removed {result['rows_removed']}, {result['duration_s']} s\n"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    run_reporting_failures(main, lambda text: write_failure(processing_root(), text))
