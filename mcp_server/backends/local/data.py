"""Local dataset preparation: load, version, clean rows, split, and store as Parquet.

Layout under ``settings.home / "datasets"`` (the README, "What a run leaves behind")::

    {dataset_id}/raw/data.parquet                         the data exactly as loaded
    {dataset_id}/processed/{split_key}/metadata.json      the DatasetRef
    {dataset_id}/processed/{split_key}/{train,validation,test}/data.parquet

``dataset_id`` is ``{name}-{data_version}``: it identifies the *data* (lineage, registry tags and
the data-change trigger compare it). ``split_key`` is 8 hex digits over everything else that
shapes the stored rows or the DatasetRef: source, task, target, split fractions, stratification,
seed and the row-level preprocessing options (duplicates, ``missing_values: drop``, outliers).
Two specs over the same data with different splits therefore share ``raw/`` but never overwrite
each other's splits; the DatasetRef's ``splits`` URIs point at the exact folder. Column
transforms (imputation, encoding, scaling) are left to the training job's pipeline.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd
from sklearn import datasets as skdatasets
from sklearn.model_selection import train_test_split

from mcp_server.backends.base import DatasetBackend
from mcp_server.backends.environments import environment_ref
from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.bounds import preview
from mcp_server.core.spec.catalog import SKLEARN_DATASETS
from mcp_server.core.spec.schema import DatasetSpec, OutlierSpec, PreprocessingSpec, TrainingSpec
from mcp_server.errors import DatasetError
from mcp_server.settings import Settings

SPLITS = ("train", "validation", "test")
#: Folders of the project (``base_dir``) whose files ``file://`` sources may read.
PROJECT_DATA_FOLDERS = ("data", "examples/data")


def path_from_uri(uri: str) -> Path:
    """Return the local path of a ``file://`` URI as ``Path.as_uri()`` writes it.

    Raises:
        ValueError: the URI is not a ``file://`` URI.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"expected a file:// URI, got {uri!r}")
    return Path(url2pathname(parsed.path))


class LocalDatasetBackend(DatasetBackend):
    """Prepares datasets into the workspace from ``sklearn://NAME`` and ``file://`` sources.

    ``file://`` sources are confined: the path, with symlinks followed, must lie under one of
    ``data_roots`` (the project's ``data/`` and ``examples/data/``, and ``settings.data_roots``).

    Args:
        settings: gives the workspace (``settings.home``) and the extra data roots.
        base_dir: the project folder; resolves relative file sources: ``file://examples/data/x.csv``
            is ``base_dir/examples/data/x.csv``; ``file:///abs/x.csv`` is absolute.
    """

    def __init__(self, settings: Settings, base_dir: Path) -> None:
        self._root = settings.home / "datasets"
        self._base_dir = Path(base_dir)
        self.data_roots = tuple(
            [(self._base_dir / folder).resolve() for folder in PROJECT_DATA_FOLDERS]
            + [Path(root).resolve() for root in settings.data_roots]
        )

    def prepare_dataset(self, spec: TrainingSpec) -> DatasetRef:
        """Load, version, clean and split ``spec.dataset``; store raw data and splits.

        Idempotent: the same data and spec return the stored DatasetRef without rewriting.

        Args:
            spec: a validated spec with a ``dataset`` section.

        Returns:
            The DatasetRef; ``splits`` maps ``train``, ``test`` (and ``validation`` when its
            fraction is above 0) to file:// URIs of folders holding ``data.parquet``. For a
            control task the "dataset" is the Gymnasium environment, checked and versioned by
            ``environments.environment_ref`` (no splits).

        Raises:
            DatasetError: no dataset section, an unreadable or unknown source, a missing target
                column, too few rows or class members for the split.
        """
        if spec.task == "control" and spec.environment is not None:
            return environment_ref(spec.environment)
        ds = spec.dataset
        if ds is None:
            raise DatasetError(f"the {spec.task} spec has no dataset section; add dataset.source")
        raw, label_names = self._load(ds.source)
        target = check_loaded(raw, ds, spec.task)
        data_version = compute_data_version(raw)
        dataset_id = f"{ds.name or 'dataset'}-{data_version}"
        key = split_key(spec)
        folder = self._root / dataset_id
        metadata = folder / "processed" / key / "metadata.json"
        if metadata.is_file():
            return DatasetRef.model_validate_json(metadata.read_text())
        _write_parquet_atomic(raw, folder / "raw" / "data.parquet")
        identity = {
            "dataset_id": dataset_id,
            "name": ds.name or "dataset",
            "source": ds.source,
            "data_version": data_version,
            "uri": folder.as_uri(),
            "task": spec.task,
            "target": target,
            "rows_raw": len(raw),
        }
        parts, ref = build_splits(raw, spec, identity, label_names)
        return _store(parts, ref, folder / "processed" / key)

    def _load(self, source: str) -> tuple[pd.DataFrame, list[str] | None]:
        if source.startswith("sklearn://"):
            return load_sklearn(source.removeprefix("sklearn://"))
        if source.startswith("file://"):
            return load_file(confined_path(source, self._base_dir, self.data_roots), source), None
        raise DatasetError(
            f"dataset.source {source!r}: the local backend reads sklearn://NAME and "
            "file://PATH (csv or parquet); copy the data to a file and use file://"
        )


def confined_path(source: str, base_dir: Path, roots: Iterable[Path]) -> Path:
    """The file a ``file://`` source names, once it is known to lie under one of ``roots``.

    The path is percent-decoded, made absolute against ``base_dir`` and resolved (symlinks
    followed, ``..`` removed) before the check, so neither ``..``, ``%2e%2e`` nor a link leads
    out. The refusal says nothing about the file: not whether it exists, nor what it holds.

    Args:
        source: ``file://PATH``; a relative PATH is relative to ``base_dir``.
        base_dir: the project folder.
        roots: resolved folders whose files may be read.

    Returns:
        The resolved path (what is read, so a link swapped later cannot lead out).

    Raises:
        DatasetError: the path is outside every root.
    """
    path = Path(unquote(source.removeprefix("file://")))
    resolved = (path if path.is_absolute() else base_dir / path).resolve()
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    raise DatasetError(
        f"dataset.source {preview(source)}: not in an allowed data folder; allowed: "
        "file://data/... or file://examples/data/... (relative to the project folder), or a file "
        'under a folder listed in MLOPS_DATA_ROOTS (see the README, "Your own data")'
    )


def load_sklearn(name: str) -> tuple[pd.DataFrame, list[str] | None]:
    """Load a dataset shipped inside scikit-learn (nothing is downloaded).

    Args:
        name: one of ``SKLEARN_DATASETS``, e.g. ``iris``.

    Returns:
        The frame (features plus the label column ``target``, as scikit-learn ships it) and,
        for classification datasets, the ``target_names`` of codes 0..K-1 (e.g. ``setosa``),
        which become the DatasetRef's ``class_labels``; None for regression datasets.

    Raises:
        DatasetError: the name is not one of ``SKLEARN_DATASETS``.
    """
    if name not in SKLEARN_DATASETS:
        hint = _did_you_mean(name, SKLEARN_DATASETS)
        raise DatasetError(
            f"dataset.source sklearn://{name}: unknown scikit-learn dataset{hint}; "
            f"available: {', '.join(SKLEARN_DATASETS)}"
        )
    bunch = getattr(skdatasets, f"load_{name}")(as_frame=True)
    names = getattr(bunch, "target_names", None)
    return bunch.frame.copy(), None if names is None else [str(n) for n in names]


def load_file(path: Path, source: str) -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file.

    Raises:
        DatasetError: the file does not exist, has an unsupported extension or cannot be parsed.
    """
    if not path.is_file():
        raise DatasetError(
            f"dataset.source {source}: file {path} does not exist; relative file:// "
            "paths are resolved against the project folder, or use file:///absolute/path"
        )
    suffixes = "".join(path.suffixes).lower()
    kind = "Parquet" if suffixes.endswith((".parquet", ".pq")) else "CSV" if ".csv" in suffixes else None
    if kind is None:
        raise DatasetError(
            f"dataset.source {source}: unsupported file type {path.suffix!r}; use .csv or .parquet"
        )
    try:
        return pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path)
    except Exception as err:  # pandas and pyarrow raise many unrelated classes for a bad file
        raise DatasetError(
            f"dataset.source {source}: cannot read {path} ({err}); check that it is a valid {kind} file"
        ) from err


def compute_data_version(frame: pd.DataFrame) -> str:
    """Return 12 hex digits of a SHA-256 over the frame's columns, dtypes and values.

    Stable across processes (pandas' row hashes use a fixed key); any changed value, column
    name, dtype or row order changes it.
    """
    digest = hashlib.sha256()
    header = [[str(c), str(t)] for c, t in zip(frame.columns, frame.dtypes, strict=True)]
    digest.update(json.dumps(header).encode())
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digest.update(rows.tobytes())
    return digest.hexdigest()[:12]


def split_key(spec: TrainingSpec) -> str:
    """Return 8 hex digits over the options that shape the stored splits (see module doc).

    Args:
        spec: a spec with a ``dataset`` section.
    """
    assert spec.dataset is not None  # callers check
    prep = spec.preprocessing
    options = {
        "source": spec.dataset.source,
        "task": spec.task,
        "target": spec.dataset.target,
        "split": spec.dataset.split.model_dump(mode="json"),
        "drop_duplicates": prep.drop_duplicates,
        "drop_missing": prep.missing_values == "drop",
        "outliers": prep.outliers.model_dump(mode="json") if prep.outliers else None,
    }
    canonical = json.dumps(options, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def _did_you_mean(value: str, choices: Iterable[object]) -> str:
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_loaded(raw: pd.DataFrame, ds: DatasetSpec, task: str) -> str | None:
    """Check that the loaded data has rows, columns and the target; return the target column.

    Raises:
        DatasetError: no rows or no columns; no target for a supervised task; a target that is
            not a column (the message suggests the closest one and lists them).
    """
    if raw.empty or raw.shape[1] == 0:
        raise DatasetError(f"dataset {preview(ds.source)} has no rows or no columns; check the file")
    target = ds.target
    if target is None and task in ("classification", "regression"):
        raise DatasetError(f"dataset.target is required for {task}: name the column to predict")
    if target is not None and target not in raw.columns:
        columns = [str(c) for c in raw.columns]
        raise DatasetError(
            f"dataset.target {target!r} is not a column of {ds.source}"
            f"{_did_you_mean(target, columns)}; available columns: {', '.join(columns)}"
        )
    return target


def build_splits(
    raw: pd.DataFrame,
    spec: TrainingSpec,
    identity: dict[str, Any],
    label_names: list[str] | None,
) -> tuple[dict[str, pd.DataFrame], DatasetRef]:
    """Clean rows, encode labels, split and remove training outliers, in memory.

    Storage-free, so every dataset backend prepares the same rows the same way: the same spec
    on the same data gives the same splits.

    Args:
        raw: the data as loaded.
        spec: a spec with a ``dataset`` section.
        identity: the DatasetRef fields the caller computed (``dataset_id``, ``name``,
            ``source``, ``data_version``, ``uri``, ``task``, ``target``, ``rows_raw``).
        label_names: scikit-learn's ``target_names`` of a shipped dataset, else None.

    Returns:
        The splits (name -> rows) and their DatasetRef, with ``splits`` empty: the caller stores
        the rows and fills in where.

    Raises:
        DatasetError: a non-numeric regression target, too few rows or class members for the
            split, or outlier removal that leaves no training rows.
    """
    ds, prep, target = spec.dataset, spec.preprocessing, identity["target"]
    assert ds is not None  # checked by prepare_dataset
    frame, removed = _clean_rows(raw, prep, target)
    if target is None and ds.source.startswith("sklearn://"):
        frame = frame.drop(columns="target")  # the label must not become a feature
    labels: list[str] | None = None
    if spec.task == "classification" and target is not None:
        frame, labels = _encode_labels(frame, target, label_names)
    elif spec.task == "regression" and target and not pd.api.types.is_numeric_dtype(frame[target]):
        raise DatasetError(
            f"dataset.target {target!r} must be numeric for regression "
            f"(dtype {frame[target].dtype}); use task: classification for labels"
        )
    stratify = spec.task == "classification" and ds.split.stratify and target is not None
    parts = _split(frame, ds, target if stratify else None, labels)
    features = [str(c) for c in frame.columns if c != target]
    if prep.outliers is not None:
        parts["train"], removed["outliers"] = _remove_outliers(parts["train"], features, prep.outliers)
        if parts["train"].empty:
            raise DatasetError(
                f"outlier removal ({prep.outliers.method}, factor {prep.outliers.factor}) "
                "left no training rows; raise preprocessing.outliers.factor"
            )
    class_counts = None
    if labels is not None:
        counts = pd.concat([p[target] for p in parts.values()]).value_counts()
        class_counts = {label: int(counts.get(code, 0)) for code, label in enumerate(labels)}
    ref = DatasetRef(
        **identity,
        splits={},
        split_sizes={n: len(p) for n, p in parts.items()},
        feature_names=features,
        feature_types={c: _feature_type(frame[c]) for c in features},
        class_labels=labels,
        class_counts=class_counts,
        rows_removed=removed,
    )
    return parts, ref


def _clean_rows(
    raw: pd.DataFrame, prep: PreprocessingSpec, target: str | None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop duplicates and rows with missing values (always those without a label)."""
    frame, removed = raw, {"duplicates": 0, "missing": 0, "outliers": 0}
    if prep.drop_duplicates:
        frame = frame.drop_duplicates()
        removed["duplicates"] = len(raw) - len(frame)
    before = len(frame)
    if prep.missing_values == "drop":
        frame = frame.dropna()
    elif target is not None:
        frame = frame.dropna(subset=[target])  # a row without a label cannot be used
    removed["missing"] = before - len(frame)
    return frame.reset_index(drop=True), removed


def _encode_labels(
    frame: pd.DataFrame, target: str, label_names: list[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """Map labels to codes 0..K-1 in sorted label order; return the frame and each code's label.

    ``label_names`` (scikit-learn's ``target_names``) name the codes when the labels already are
    the integers 0..K-1.
    """
    values = frame[target]
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(values.to_numpy(dtype=float), 1) == 0):
        values = values.astype("int64")  # 0.0/1.0 after a NaN forced floats: labels 0 and 1
    originals = list(pd.unique(values))
    try:
        originals.sort()
    except TypeError:
        originals.sort(key=str)
    codes = {label: code for code, label in enumerate(originals)}
    frame = frame.assign(**{target: values.map(codes).astype("int64")})
    if label_names is not None and originals == list(range(len(label_names))):
        return frame, list(label_names)
    return frame, [str(label) for label in originals]


def _split(
    frame: pd.DataFrame, ds: DatasetSpec, stratify_on: str | None, labels: list[str] | None
) -> dict[str, pd.DataFrame]:
    """Split into test, then train/validation, checking sizes and class counts first."""
    split = ds.split
    names = [n for n in SPLITS if getattr(split, n) > 0]
    n_test = math.ceil(split.test * len(frame))  # train_test_split rounds the held-out side up
    n_val = math.ceil(split.validation / (split.train + split.validation) * (len(frame) - n_test))
    expected = {"train": len(frame) - n_test - n_val, "validation": n_val, "test": n_test}
    if any(expected[n] < 1 for n in names):
        shown = ", ".join(f"{n} {expected[n]}" for n in names)
        raise DatasetError(
            f"dataset {ds.source} has {len(frame)} usable rows, too few for the split "
            f"({shown} rows); add data or change dataset.split"
        )
    if stratify_on is not None:
        counts = frame[stratify_on].value_counts()
        small = counts[counts < len(names)]
        if not small.empty:
            shown = ", ".join(f"{labels[int(c)] if labels else c!r}: {n}" for c, n in small.items())
            raise DatasetError(
                f"dataset.target {stratify_on!r}: classes with fewer than {len(names)} rows "
                f"cannot be stratified into {len(names)} splits ({shown}); add rows, "
                "drop those classes, or set dataset.split.stratify: false"
            )
    try:
        rest, test = _two_way(frame, split.test, split.seed, stratify_on)
        parts = {"test": test}
        if split.validation > 0:
            val_share = split.validation / (split.train + split.validation)
            parts["train"], parts["validation"] = _two_way(rest, val_share, split.seed, stratify_on)
        else:
            parts["train"] = rest
    except ValueError as err:
        raise DatasetError(
            f"dataset {ds.source}: cannot split {len(frame)} rows with {split!r}: {err}; "
            "add rows or change dataset.split"
        ) from err
    return {n: parts[n] for n in SPLITS if n in parts}


def _two_way(frame: pd.DataFrame, share: float, seed: int, stratify_on: str | None):
    strata = frame[stratify_on] if stratify_on else None
    first, second = train_test_split(frame, test_size=share, random_state=seed, stratify=strata)
    return first.reset_index(drop=True), second.reset_index(drop=True)


def _remove_outliers(
    train: pd.DataFrame, features: list[str], outliers: OutlierSpec
) -> tuple[pd.DataFrame, int]:
    """Drop rows outside the IQR fences or the z-score cut-off on any numeric feature.

    Columns with no spread (IQR or standard deviation 0, e.g. mostly-zero indicators) are
    skipped, since every other value would count as an outlier; NaN values are kept.
    """
    numeric = [c for c in features if _feature_type(train[c]) == "numeric"]
    keep = pd.Series(True, index=train.index)
    for column in numeric:
        values = train[column].astype(float)
        if outliers.method == "iqr":
            q1, q3 = values.quantile(0.25), values.quantile(0.75)
            spread = q3 - q1
            bad = (values < q1 - outliers.factor * spread) | (values > q3 + outliers.factor * spread)
        else:
            spread = values.std()
            bad = ((values - values.mean()) / spread).abs() > outliers.factor if spread > 0 else False
        if spread > 0:
            keep &= ~bad
    return train[keep].reset_index(drop=True), int((~keep).sum())


def _feature_type(column: pd.Series) -> str:
    is_number = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    return "numeric" if is_number else "categorical"


def _write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    frame.to_parquet(partial, index=False)
    partial.replace(path)


def _store(parts: dict[str, pd.DataFrame], ref: DatasetRef, final: Path) -> DatasetRef:
    """Write splits and metadata into a staging folder, then rename it to ``final``.

    A reader never sees a half-written folder; when a concurrent writer got there first, its
    (identical) copy wins.
    """
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
    splits = {}
    for name, part in parts.items():
        (staging / name).mkdir(parents=True)
        part.to_parquet(staging / name / "data.parquet", index=False)
        splits[name] = (final / name).as_uri()
    ref = ref.model_copy(update={"splits": splits})
    (staging / "metadata.json").write_text(ref.model_dump_json(indent=2))
    try:
        staging.rename(final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (final / "metadata.json").is_file():
            raise
    return DatasetRef.model_validate_json((final / "metadata.json").read_text())
