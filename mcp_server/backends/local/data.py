"""Local dataset preparation: the preparation program as a processing job, its result published.

Layout under ``settings.home`` (the README, "What a run leaves behind")::

    preparations/{preparation_id}/                      the job: input/, output/, preparation.log,
                                                        status.json, published.json
    datasets/{dataset_id}/raw/data.parquet               the data exactly as loaded
    datasets/{dataset_id}/processed/{split_key}/metadata.json    the DatasetRef
    datasets/{dataset_id}/processed/{split_key}/{train,validation,test}/data.parquet

The program (``training_containers/preparation``) runs as a local processing job
(``processing_job.run_processing_job``) with the source file linked as ``input/data/<name>``;
scikit-learn's shipped datasets it loads itself. Its splits are then moved into the dataset's
folder, ``metadata.json`` last (a reader never sees a half-published dataset), and
``published.json`` records where: the same source file, unchanged (path, size and modification
time), with the same spec returns that DatasetRef without running again
(``core.jobs.preparation.preparation_id``).

``dataset_id`` is ``{name}-{data_version}``: it identifies the *data* (lineage, registry tags and
the data-change trigger compare it). ``split_key`` is 8 hex digits over everything else that
shapes the stored rows (``core.jobs.preparation.split_key``). Column transforms (imputation,
encoding, scaling) are left to the training job's pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from mcp_server.backends.base import DatasetBackend
from mcp_server.backends.environments import environment_ref
from mcp_server.backends.local.files import exclusive, write_json_atomic
from mcp_server.backends.local.processing_job import failure_reason, run_processing_job
from mcp_server.core.jobs import preparation
from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.bounds import preview
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.errors import DatasetError
from mcp_server.settings import Settings

#: Folders of the project (``base_dir``) whose files ``file://`` sources may read.
PROJECT_DATA_FOLDERS = ("data", "examples/data")
LOG = "preparation.log"


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
        settings: gives the workspace (``settings.home``), the extra data roots and the jobs'
            address-space limit.
        base_dir: the project folder; resolves relative file sources: ``file://examples/data/x.csv``
            is ``base_dir/examples/data/x.csv``; ``file:///abs/x.csv`` is absolute.
    """

    def __init__(self, settings: Settings, base_dir: Path) -> None:
        self._settings = settings
        self._root = settings.home / "datasets"
        self._jobs = settings.home / "preparations"
        self._base_dir = Path(base_dir)
        self.data_roots = tuple(
            [(self._base_dir / folder).resolve() for folder in PROJECT_DATA_FOLDERS]
            + [Path(root).resolve() for root in settings.data_roots]
        )

    def prepare_dataset(self, spec: TrainingSpec, feedback_uri: str | None = None) -> DatasetRef:
        """Load, version, clean and split ``spec.dataset`` in a processing job; publish the result.

        Idempotent: an unchanged source with the same spec returns the published DatasetRef
        without running the job again; a preparation that stopped half-way is run again.

        Args:
            spec: a validated spec with a ``dataset`` section.
            feedback_uri: a monitoring job's ``feedback.parquet`` in the workspace
                (``{home}/monitoring/``), appended to the source's rows (``retraining.feedback``).

        Returns:
            The DatasetRef; ``splits`` maps ``train``, ``test`` (and ``validation`` when its
            fraction is above 0) to file:// URIs of folders holding ``data.parquet``. For a
            control task the "dataset" is the Gymnasium environment, checked and versioned by
            ``environments.environment_ref`` (no splits).

        Raises:
            DatasetError: no dataset section; an unknown, unreadable or out-of-bounds source; a
                missing target column, too few rows or class members for the split (the
                program's message as it is); or a job that failed for another reason (its
                failure, and the log's path).
        """
        if spec.task == "control" and spec.environment is not None:
            return environment_ref(spec.environment)
        ds = spec.dataset
        if ds is None:
            raise DatasetError(f"the {spec.task} spec has no dataset section; add dataset.source")
        path, fingerprint = self._source(ds.source)
        feedback = self._feedback(feedback_uri) if feedback_uri else None
        if feedback is not None:
            fingerprint += f"|feedback:{hashlib.sha256(feedback.read_bytes()).hexdigest()}"
        job_id = preparation.preparation_id(fingerprint, spec)
        job_dir = self._jobs / job_id
        with exclusive(job_dir / "preparation.lock"):
            published = self._published(job_dir)
            if published is not None:
                return published
            inputs = {f"data/{path.name}": path} if path is not None else {}
            if feedback is not None:
                inputs[f"feedback/{feedback.name}"] = feedback
            config = preparation.program_config(
                spec, job_id, path.name if path else None, feedback_file=feedback.name if feedback else None
            )
            status = run_processing_job(
                job_dir,
                preparation.PROGRAM,
                inputs,
                (preparation.CONFIG_FILE, config),
                self._settings,
                LOG,
                timeout_s=preparation.MAX_RUNTIME_S,
            )
            result_file = job_dir / "output" / preparation.RESULT_FILE
            if not result_file.is_file():
                if status["timed_out"]:
                    reason = f"ran longer than {preparation.MAX_RUNTIME_S} s (MaxRuntimeExceeded)"
                else:
                    limit = self._settings.job_memory_limit_mb
                    reason = failure_reason(job_dir, status["exit_code"], LOG, limit, "dataset.json")
                raise DatasetError(preparation.failure_message(job_id, reason, (job_dir / LOG).as_uri()))
            ref = self._publish(spec, job_dir / "output", json.loads(result_file.read_text()))
            metadata = _metadata(ref).relative_to(self._root)
            write_json_atomic(job_dir / "published.json", {"metadata": metadata.as_posix()})
            for leftover in (job_dir / "output").iterdir():  # what another preparation published first
                if leftover.is_dir():
                    shutil.rmtree(leftover)
            return ref

    def _source(self, source: str) -> tuple[Path | None, str]:
        """The file to mount (None for scikit-learn's datasets) and the source's fingerprint.

        Raises:
            DatasetError: an unknown scheme or scikit-learn dataset, a path outside the data
                roots, a file that does not exist or whose type is not CSV or Parquet.
        """
        if source.startswith("sklearn://"):
            preparation.check_sklearn_name(source.removeprefix("sklearn://"))
            return None, source
        if not source.startswith("file://"):
            raise DatasetError(
                f"dataset.source {preview(source)}: the local backend reads sklearn://NAME and "
                "file://PATH (csv or parquet); copy the data to a file and use file://"
            )
        path = confined_path(source, self._base_dir, self.data_roots)
        if not path.is_file():
            raise DatasetError(
                f"dataset.source {source}: file {path} does not exist; relative file:// "
                "paths are resolved against the project folder, or use file:///absolute/path"
            )
        preparation.check_file_kind(source, path.name)
        stat = path.stat()
        return path, f"{path}|{stat.st_size}|{stat.st_mtime_ns}"

    def _feedback(self, uri: str) -> Path:
        """The feedback file: a monitoring job's Parquet output in this workspace.

        Raises:
            DatasetError: a URI that is not ``file://``, a file outside ``{home}/monitoring/``,
                or one that does not exist or is not Parquet.
        """
        monitoring = (self._settings.home / "monitoring").resolve()
        try:
            path = path_from_uri(uri).resolve()
        except ValueError as err:
            raise DatasetError(f"feedback {preview(uri)}: {err}") from err
        if not path.is_relative_to(monitoring) or path.suffix != ".parquet" or not path.is_file():
            raise DatasetError(
                f"feedback {preview(uri)}: not a monitoring job's feedback.parquet under {monitoring}"
            )
        return path

    def _published(self, job_dir: Path) -> DatasetRef | None:
        """The DatasetRef this preparation published, when its metadata is still there."""
        pointer = job_dir / "published.json"
        if not pointer.is_file():
            return None
        metadata = self._root / json.loads(pointer.read_text())["metadata"]
        if not metadata.is_file():
            return None  # the dataset was deleted: prepare again
        return DatasetRef.model_validate_json(metadata.read_text())

    def _publish(self, spec: TrainingSpec, output: Path, result: dict[str, Any]) -> DatasetRef:
        """Move the job's raw data and splits into the dataset's folder; return its DatasetRef.

        ``raw/`` is kept when another preparation of the same data published it first; the
        splits go to a staging folder that is renamed to ``processed/{split_key}`` once
        ``metadata.json`` is in it. When a concurrent preparation got there first, its
        (identical) copy wins.
        """
        folder = self._root / preparation.dataset_id(spec, result)
        raw = folder / "raw" / "data.parquet"
        if not raw.is_file():
            raw.parent.mkdir(parents=True, exist_ok=True)
            os.replace(output / "raw" / "data.parquet", raw)
        final = folder / "processed" / preparation.split_key(spec)
        if (final / "metadata.json").is_file():
            return DatasetRef.model_validate_json((final / "metadata.json").read_text())
        staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        splits = {}
        for name in preparation.SPLITS:
            if name in result.get("split_sizes", {}):
                os.replace(output / name, staging / name)
                splits[name] = (final / name).as_uri()
        ref = preparation.dataset_ref(spec, result, folder.as_uri(), splits)
        (staging / "metadata.json").write_text(ref.model_dump_json(indent=2))
        try:
            staging.rename(final)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (final / "metadata.json").is_file():
                raise
        return DatasetRef.model_validate_json((final / "metadata.json").read_text())


def _metadata(ref: DatasetRef) -> Path:
    """The ``metadata.json`` of a published DatasetRef (beside its split folders)."""
    return path_from_uri(next(iter(ref.splits.values()))).parent / "metadata.json"


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
