"""The data preparation processing job's identity, configuration and result. Pure.

Both dataset backends (a local process, a SageMaker processing job) run the same program,
``training_containers/preparation/prepare.py``, give it the same ``preparation.json`` and read
the same ``dataset.json`` back, so the same spec on the same data gives the same data version
and splits in both modes.

A preparation is named by what it reads and what it is asked: ``preparation_id`` hashes the
source's *fingerprint* (a file's path, size and modification time; an S3 object's ETag, size and
version; a scikit-learn dataset's name), the dataset's name and the ``split_key``. A source
whose fingerprint has not changed is therefore not prepared again; one that changed is, and its
content decides the data version.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from typing import Any

from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.bounds import preview
from mcp_server.core.spec.catalog import SKLEARN_DATASETS
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.errors import DatasetError

#: The program's module (``python -m``), and its configuration and result files.
PROGRAM = "training_containers.preparation.prepare"
CONFIG_FILE = "preparation.json"
RESULT_FILE = "dataset.json"
#: The splits a preparation may write, in this order.
SPLITS = ("train", "validation", "test")
#: Seconds a preparation may run: 100 GB at NFR-003's 100 GB/hour, with a margin of 3 hours.
MAX_RUNTIME_S = 4 * 3600
#: DuckDB's memory limit in a local job, MiB (peak RSS about 200 MiB more; what does not fit
#: is spilled to disk, so any file size fits: benchmarks/prepare_throughput.py).
LOCAL_MEMORY_LIMIT_MB = 640
#: SageMaker's largest processing volume, GB.
MAX_VOLUME_GB = 16_384
#: Suffixes of the compressed CSVs the program reads.
COMPRESSED_SUFFIXES = (".gz", ".zst", ".bz2", ".xz", ".zip")
_FILE_KINDS = ((".parquet", "Parquet"), (".pq", "Parquet"))


def dataset_name(spec: TrainingSpec) -> str:
    """The dataset's name: ``dataset.name`` (the spec derives it from the file), else ``dataset``."""
    assert spec.dataset is not None  # callers check
    return spec.dataset.name or "dataset"


def split_key(spec: TrainingSpec) -> str:
    """Return 8 hex digits over the options that shape the stored splits.

    Source, task, target, split fractions, stratification and seed, and the row-level
    preprocessing (duplicates, ``missing_values: drop``, outliers): two specs over the same
    data that differ in any of these share ``raw/`` but never each other's splits.

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


def preparation_id(fingerprint: str, spec: TrainingSpec) -> str:
    """The job's name: ``prepare-`` and 16 hex digits over the fingerprint, name and split key.

    Args:
        fingerprint: what identifies the source's current content without reading it (see the
            module).
        spec: a spec with a ``dataset`` section.

    Returns:
        A name valid as a folder, an S3 key segment and a SageMaker processing job name
        (at most 63 characters).
    """
    canonical = json.dumps([fingerprint, dataset_name(spec), split_key(spec)], separators=(",", ":"))
    return "prepare-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def check_sklearn_name(name: str) -> None:
    """Check that ``sklearn://NAME`` names a dataset scikit-learn ships.

    Raises:
        DatasetError: an unknown name (the message suggests the closest one and lists them).
    """
    if name in SKLEARN_DATASETS:
        return
    close = difflib.get_close_matches(name, SKLEARN_DATASETS, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DatasetError(
        f"dataset.source sklearn://{name[:100]}: unknown scikit-learn dataset{hint}; "
        f"available: {', '.join(SKLEARN_DATASETS)}"
    )


def check_file_kind(source: str, file_name: str) -> str:
    """Return ``CSV`` or ``Parquet`` for a source file's name (a CSV may be compressed).

    Raises:
        DatasetError: neither a ``.csv`` (``.csv.gz``, ``.csv.zst``, ...) nor a ``.parquet``/``.pq``.
    """
    lowered = file_name.lower()
    for suffix, kind in _FILE_KINDS:
        if lowered.endswith(suffix):
            return kind
    if ".csv" in lowered:
        return "CSV"
    raise DatasetError(
        f"dataset.source {preview(source)}: unsupported file type; use .csv (optionally "
        ".gz, .zst, .bz2, .xz or .zip compressed) or .parquet"
    )


def volume_size_gb(source_bytes: int, file_name: str | None) -> int:
    """The processing volume a SageMaker preparation needs for a source of ``source_bytes`` bytes.

    ``file_name`` is the source file's name (None for a scikit-learn dataset); its suffix tells
    a compressed CSV.

    Room for the source, the Parquet outputs and DuckDB's spill (four times the source), and for
    a compressed CSV its decompressed copy (CSV compresses about eight-fold: twelve times the
    source), plus 20 GB; at least 30 GB (the evaluation's), at most ``MAX_VOLUME_GB``.
    """
    compressed = bool(file_name) and str(file_name).lower().endswith(COMPRESSED_SUFFIXES)
    factor = 12 if compressed else 4
    return min(MAX_VOLUME_GB, max(30, math.ceil(factor * source_bytes / 1e9) + 20))


def program_config(
    spec: TrainingSpec,
    preparation_id: str,
    input_file: str | None,
    memory_limit_mb: int = LOCAL_MEMORY_LIMIT_MB,
    feedback_file: str | None = None,
) -> dict[str, Any]:
    """The content of ``input/config/preparation.json``.

    Args:
        spec: a spec with a ``dataset`` section.
        preparation_id: the job's name.
        input_file: the source file's name under ``input/data/`` (``loans.csv``), or None for a
            ``sklearn://`` source, which the program loads itself.
        memory_limit_mb: DuckDB's memory limit, MiB.
        feedback_file: the feedback file's name under ``input/feedback/``, or None.
    """
    ds = spec.dataset
    assert ds is not None  # callers check
    prep = spec.preprocessing
    return {
        "preparation_id": preparation_id,
        "source": ds.source,
        "input": f"data/{input_file}" if input_file else None,
        "sklearn": ds.source.removeprefix("sklearn://") if ds.source.startswith("sklearn://") else None,
        "task": spec.task,
        "target": ds.target,
        "split": ds.split.model_dump(mode="json"),
        "drop_duplicates": prep.drop_duplicates,
        "drop_missing": prep.missing_values == "drop",
        "outliers": prep.outliers.model_dump(mode="json") if prep.outliers else None,
        "memory_limit_mb": memory_limit_mb,
        "feedback": f"feedback/{feedback_file}" if feedback_file else None,
    }


def dataset_id(spec: TrainingSpec, result: dict[str, Any]) -> str:
    """``{name}-{data_version}``: identifies the data (lineage, tags and triggers compare it).

    Raises:
        DatasetError: the result has no data version.
    """
    version = result.get("data_version")
    if not isinstance(version, str) or not version:
        raise DatasetError(f"the preparation's {RESULT_FILE} has no data_version")
    return f"{dataset_name(spec)}-{version}"


def dataset_ref(spec: TrainingSpec, result: dict[str, Any], uri: str, splits: dict[str, str]) -> DatasetRef:
    """The DatasetRef of a finished preparation.

    Args:
        spec: the spec it was prepared for.
        result: the content of the program's ``dataset.json``.
        uri: the dataset's root (``datasets/{dataset_id}/``).
        splits: split name -> the folder (URI) holding its ``data.parquet``.

    Raises:
        DatasetError: ``dataset.json`` does not fit the DatasetRef's fields.
    """
    assert spec.dataset is not None  # callers check
    try:
        return DatasetRef(
            dataset_id=dataset_id(spec, result),
            name=dataset_name(spec),
            source=spec.dataset.source,
            data_version=result["data_version"],
            uri=uri,
            task=spec.task,
            target=result.get("target"),
            rows_raw=result["rows_raw"],
            splits=splits,
            split_sizes=result["split_sizes"],
            feature_names=result["feature_names"],
            feature_types=result["feature_types"],
            class_labels=result.get("class_labels"),
            class_counts=result.get("class_counts"),
            rows_removed=result.get("rows_removed") or {},
            rows_feedback=result.get("rows_feedback") or 0,
        )
    except (KeyError, TypeError, ValueError) as err:  # pydantic's ValidationError is a ValueError
        raise DatasetError(f"cannot read the preparation's {RESULT_FILE}: {err}") from err


def failure_message(preparation_id: str, reason: str, log: str) -> str:
    """The DatasetError's message for a failed preparation.

    A ``DataError`` (data the spec cannot use) is the user's to fix: its message is shown as it
    is. Any other failure names the job and its log.

    Args:
        preparation_id: the job's name.
        reason: the failure's headline (``Type: message``), SageMaker's FailureReason or the log's tail.
        log: where the job's log is (a file URI or the CloudWatch console page).
    """
    if reason.startswith("DataError: "):
        return reason.removeprefix("DataError: ")
    return f"data preparation {preparation_id} failed: {reason} (log: {log})"
