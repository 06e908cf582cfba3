"""Local model registry: MLflow's registry on the workspace's SQLite store.

A registration logs the trained Pipeline as an MLflow scikit-learn model into the training
job's run (cloudpickle format, explicit pip requirements: inferring them takes seconds and adds
packages the model does not use) — or, for a reinforcement-learning policy (a model folder
without ``model.joblib``), as an MLflow pyfunc model (``training_containers.rl.policy``'s
``PolicyModel``: observations in, greedy actions out) — creates a model version of the registered model
``request.model_name`` whose tags carry the lineage, the metrics (``metric.<name>``), the
semantic version and the fingerprint it was computed from (``core.versioning``), and points the
``challenger`` alias at it. The model files are also copied to
``settings.home/models/{model_name}/{version}/`` (the README, "What a run leaves behind") with a
``registration.json``. A request's drift baseline (``baseline_uri``, the evaluation's
``baseline.json``) is logged to the run under ``baseline/``, copied beside the model files as
``baseline.json`` and named by the version's ``baseline_uri`` tag.

Registrations within one process are serialised by a lock, so two concurrent registrations of one
model never compute the same semantic version; two *processes* registering the same model at the
same moment are not guarded against.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import joblib
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from mcp_server.backends.base import RegistryBackend
from mcp_server.backends.local.data import path_from_uri
from mcp_server.backends.local.files import exclusive
from mcp_server.backends.local.mlflow_store import ensure_experiment, open_client
from mcp_server.core.models import RegisteredModel, RegistrationRequest
from mcp_server.core.versioning import (
    ModelFingerprint,
    fingerprint_from,
    next_semantic_version,
    parse_version,
)
from mcp_server.errors import NotFoundError, RegistryError
from mcp_server.settings import Settings

_log = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
REGISTRY_EXPERIMENT = "registry"
_LOCK = threading.RLock()
_DESCRIPTION = (
    "Trained by issue-mlops from a GitHub issue. Each version's tags carry its lineage (issue, "
    "execution, job, spec hash, data version), metrics and semantic version; alias 'champion' is "
    "the serving version, 'challenger' the latest candidate."
)


class LocalRegistryBackend(RegistryBackend):
    """Registers trained model folders (model.joblib + metadata.json) in the local MLflow registry.

    Args:
        settings: the workspace (MLflow store ``settings.tracking_uri``, ``settings.home``).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def register_model(self, request: RegistrationRequest) -> RegisteredModel:
        """Register the model as a new version, or return the version this job registered.

        Args:
            request: model folder URI, tracking run (or None: a run is created in the
                ``registry`` experiment), metrics, lineage, and what the fingerprint needs.

        Returns:
            The version: ``version`` is MLflow's version number, ``model_uri`` is
            ``models:/{name}/{version}``, ``aliases`` includes ``challenger`` for a new version.

        Raises:
            RegistryError: the model folder or the baseline file cannot be read, or MLflow refuses
                an operation.
        """
        # One registration at a time across the workspace's processes: the version number and
        # the semantic version (from the versions before it) are assigned atomically.
        with (
            _LOCK,
            exclusive(self._settings.home / "registry.lock"),
            _tracking_uri(self._settings.tracking_uri),
        ):
            try:
                client = open_client(self._settings)
                found = _job_version(client, request)
                if found is not None:
                    return self._existing(client, found, request)
                return self._register_new(client, request)
            except (MlflowException, OSError) as err:
                raise RegistryError(
                    f"cannot register {request.model_name} from job {request.lineage.job_name}: {err}"
                ) from err

    def set_champion(self, model_name: str, version: str) -> RegisteredModel:
        """Point MLflow's ``champion`` alias at ``version`` (see ``RegistryBackend.set_champion``).

        Raises:
            NotFoundError: no such version.
            RegistryError: MLflow refused it.
        """
        with _LOCK, _tracking_uri(self._settings.tracking_uri):
            client = open_client(self._settings)
            try:
                client.get_model_version(model_name, version)
            except MlflowException as err:
                raise NotFoundError(f"no version {version} of model {model_name}") from err
            try:
                client.set_registered_model_alias(model_name, CHAMPION, version)
            except MlflowException as err:
                raise RegistryError(
                    f"cannot make {model_name} version {version} the champion: {err}"
                ) from err
            return self._result(client, model_name, version, None)

    def _register_new(self, client: MlflowClient, request: RegistrationRequest) -> RegisteredModel:
        folder, pipeline = _load_pipeline(request.model_uri)
        baseline = _baseline_path(request.baseline_uri)
        latest, previous_version = _previous(client, request.model_name)
        current = fingerprint_from(request)
        previous = ModelFingerprint.from_tags(latest.tags) if latest is not None else None
        semantic = next_semantic_version(previous, previous_version, current)
        run_id = request.tracking_run_id or self._new_run(client, request)
        info = self._log_model(client, pipeline, run_id, request)
        if baseline is not None:
            client.log_artifact(run_id, str(baseline), artifact_path="baseline")
        _ensure_registered_model(client, request.model_name)
        created = client.create_model_version(
            request.model_name,
            source=info.model_uri,
            run_id=run_id,
            model_id=info.model_id,
            tags=_version_tags(request, current, semantic),
            description=f"{semantic}: {request.algorithm} from issue #{request.lineage.issue_number} "
            f"(job {request.lineage.job_name})",
        )
        client.set_registered_model_alias(request.model_name, CHALLENGER, created.version)
        if request.tracking_run_id is None:
            client.set_terminated(run_id)
        return self._result(client, request.model_name, created.version, folder)

    def _existing(
        self, client: MlflowClient, found: ModelVersion, request: RegistrationRequest
    ) -> RegisteredModel:
        """Return the job's version; finish an interrupted registration (alias, file copy)."""
        latest, _ = _previous(client, request.model_name)
        if latest is not None and latest.version == found.version:
            client.set_registered_model_alias(request.model_name, CHALLENGER, found.version)
        copied = (self._model_dir(request.model_name, found.version) / "registration.json").is_file()
        folder = None if copied else _load_pipeline(request.model_uri)[0]
        return self._result(client, request.model_name, found.version, folder)

    def _result(
        self, client: MlflowClient, name: str, number: str | int, folder: Path | None
    ) -> RegisteredModel:
        mv = client.get_model_version(name, str(number))
        registered = RegisteredModel(
            name=name,
            version=str(mv.version),
            semantic_version=mv.tags.get("semantic_version", ""),
            aliases=sorted(mv.aliases),
            model_uri=f"models:/{name}/{mv.version}",
            run_id=mv.run_id,
        )
        if folder is not None:
            self._copy_files(folder, registered, mv)
        return registered

    def _new_run(self, client: MlflowClient, request: RegistrationRequest) -> str:
        experiment_id = ensure_experiment(client, REGISTRY_EXPERIMENT, self._settings)
        tags = {"mlflow.runName": f"register-{request.lineage.job_name}", **_lineage_tags(request)}
        return client.create_run(experiment_id, tags=tags).info.run_id

    def _log_model(self, client: MlflowClient, pipeline: Any, run_id: str, request: RegistrationRequest):
        """Log the model as a LoggedModel of the run's experiment; return MLflow's ModelInfo.

        ``pipeline`` is the unpickled ``model.joblib``, or None for a policy folder (logged as a
        pyfunc model with the folder as its artifact).
        """
        experiment_id = client.get_run(run_id).info.experiment_id
        logged = client.create_logged_model(
            experiment_id,
            name="model",
            source_run_id=run_id,
            model_type=request.model_type,
            params={k: str(v) for k, v in request.hyperparameters.items()},
        )
        if pipeline is None:
            return _log_policy(logged.model_id, run_id, request)
        return mlflow.sklearn.log_model(
            pipeline,
            name="model",
            model_id=logged.model_id,
            run_id=run_id,
            serialization_format="cloudpickle",
            pip_requirements=_pip_requirements(pipeline, request),
            signature=self._signature(pipeline, request),
            code_paths=_code_paths(pipeline),
            await_registration_for=0,
        )

    def _signature(self, pipeline: Any, request: RegistrationRequest):
        """Infer a signature from 5 test rows of the dataset, or None when they are not found.

        Integer features are declared as doubles, so callers may send 5.0 where 5 was seen.
        The signature is optional: any failure to build it is logged and skipped.
        """
        found = sorted(
            (self._settings.home / "datasets" / request.lineage.dataset_id).glob(
                "processed/*/test/data.parquet"
            )
        )
        # predict (supervised, clustering) or transform (PCA); t-SNE has neither
        output = getattr(pipeline, "predict", None) or getattr(pipeline, "transform", None)
        if not found or output is None:
            return None
        try:
            rows = pd.read_parquet(found[0])[request.feature_names].head(5)
            rows = rows.astype({c: "float64" for c in rows.columns if rows[c].dtype.kind in "iu"})
            return infer_signature(rows, output(rows))
        except Exception as err:  # missing columns, a model that refuses the rows, ...
            _log.warning("no signature for %s: %s", request.model_name, err)
            return None

    def _model_dir(self, name: str, number: str | int) -> Path:
        return self._settings.home / "models" / name / str(number)

    def _copy_files(self, folder: Path, registered: RegisteredModel, mv: ModelVersion) -> None:
        """Copy the model folder to models/{name}/{version}/ and write registration.json."""
        target = self._model_dir(registered.name, registered.version)
        shutil.copytree(folder, target, dirs_exist_ok=True)
        baseline = _baseline_path(mv.tags.get("baseline_uri"))
        if baseline is not None:
            shutil.copyfile(baseline, target / "baseline.json")
        record = {**registered.model_dump(mode="json"), "source": mv.source, "tags": dict(mv.tags)}
        (target / "registration.json").write_text(json.dumps(record, indent=2, sort_keys=True))


@contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking URI at ``uri`` for the block, then restore it.

    ``mlflow.sklearn.log_model`` and the SQL registry's ``create_model_version`` (for a
    ``models:/<model_id>`` source) read only the global URI; callers hold ``_LOCK``.
    """
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    environment = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:  # restoring an unset global URI also unsets the variable the user may have set
        if environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def _load_pipeline(model_uri: str) -> tuple[Path, Any]:
    """Return the model folder and its unpickled ``model.joblib`` (None for a policy folder).

    Raises:
        RegistryError: not a file:// URI, no such folder, or a model that cannot be loaded.
    """
    try:
        folder = path_from_uri(model_uri)
        if not (folder / "model.joblib").is_file() and (folder / "metadata.json").is_file():
            return folder, None  # a reinforcement-learning policy (training_containers.rl)
        return folder, joblib.load(folder / "model.joblib")
    except Exception as err:  # ValueError (URI), OSError, unpickling errors
        raise RegistryError(
            f"cannot load the model at {model_uri} ({err}); expected a folder holding model.joblib "
            "(or metadata.json and a policy for reinforcement learning)"
        ) from err


def _code_paths(model: Any) -> list[str] | None:
    """The ``training_containers`` package when the pickled model refers to its classes.

    A DBSCAN model with its nearest-core-sample ``predict`` or a skorch net's module is pickled
    by reference to its class; shipping the package in the MLflow model lets it load anywhere.
    """
    import cloudpickle

    import training_containers

    if b"training_containers" not in cloudpickle.dumps(model):
        return None
    return [str(Path(training_containers.__file__).parent)]


def _log_policy(model_id: str, run_id: str, request: RegistrationRequest) -> Any:
    """Log a policy folder as an MLflow pyfunc model (observations in, greedy actions out)."""
    from training_containers.rl.policy import PolicyModel

    folder = path_from_uri(request.model_uri)
    requirements = [
        f"{dist}=={version(dist).split('+')[0]}"
        for dist in ("numpy", "pandas", "torch", "gymnasium", "ray", "cloudpickle")
    ]
    with mlflow.start_run(run_id=run_id):  # pyfunc's log_model links the model to the active run
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=PolicyModel(),
            artifacts={"model_dir": str(folder)},
            code_paths=_code_paths(PolicyModel()),
            model_id=model_id,
            pip_requirements=requirements,
            await_registration_for=0,
        )


def _baseline_path(uri: str | None) -> Path | None:
    """Return the local file of a drift baseline URI, or None when there is none.

    Raises:
        RegistryError: the URI is not ``file://`` or the file does not exist.
    """
    if not uri:
        return None
    try:
        path = path_from_uri(uri)
    except ValueError as err:
        raise RegistryError(f"baseline_uri {uri!r}: the local registry reads file:// URIs only") from err
    if not path.is_file():
        raise RegistryError(f"baseline_uri {uri} does not exist; pass the evaluation's baseline_uri")
    return path


def _job_version(client: MlflowClient, request: RegistrationRequest) -> ModelVersion | None:
    """Return the version that ``request.lineage.job_name`` already registered, if any."""
    name, job = _quote(request.model_name), _quote(request.lineage.job_name)
    found = client.search_model_versions(f"name = {name} and tags.job_name = {job}")
    return min(found, key=lambda mv: int(mv.version)) if found else None


def _previous(client: MlflowClient, name: str) -> tuple[ModelVersion | None, str | None]:
    """Return the latest version (highest number) and the highest semantic version registered."""
    versions = client.search_model_versions(f"name = {_quote(name)}")
    if not versions:
        return None, None
    semantics = []
    for mv in versions:
        try:
            semantics.append(parse_version(mv.tags.get("semantic_version", "")))
        except ValueError:
            continue  # registered by something else: no semantic version to continue from
    latest = max(versions, key=lambda mv: int(mv.version))
    return latest, ".".join(map(str, max(semantics))) if semantics else None


def _quote(value: str) -> str:
    if "'" in value:
        raise RegistryError(f"{value!r} contains a quote; model and job names are letters, digits and '-'")
    return f"'{value}'"


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name, description=_DESCRIPTION)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _lineage_tags(request: RegistrationRequest) -> dict[str, str]:
    return {k: str(v) for k, v in request.lineage.model_dump().items()}


def _version_tags(
    request: RegistrationRequest, fingerprint: ModelFingerprint, semantic: str
) -> dict[str, str]:
    return {
        **_lineage_tags(request),
        **fingerprint.to_tags(),
        "semantic_version": semantic,
        **{f"metric.{k}": repr(float(v)) for k, v in request.metrics.items()},
        **({"baseline_uri": request.baseline_uri} if request.baseline_uri else {}),
    }


def _pip_requirements(pipeline: Any, request: RegistrationRequest) -> list[str]:
    """Pin what unpickling and predicting need, so MLflow never infers them.

    Inference is slow and adds packages the model does not use (such as torch). A skorch net
    (the last step, possibly inside a nested Pipeline) adds ``torch`` and ``skorch``; torch is
    pinned without its local label (``2.13.0+cpu`` -> ``torch==2.13.0``), which pip can resolve.
    """
    requirements = [f"{dist}=={version(dist)}" for dist in ("scikit-learn", "pandas", "numpy", "cloudpickle")]
    estimator = pipeline
    while hasattr(estimator, "steps"):  # the final estimator, through nested Pipelines
        estimator = estimator.steps[-1][1]
    module = type(estimator).__module__
    if request.algorithm == "xgboost" or module.startswith("xgboost"):
        for dist in ("xgboost-cpu", "xgboost"):
            try:
                requirements.append(f"{dist}=={version(dist)}")
                break
            except PackageNotFoundError:
                continue
    if request.algorithm == "neural_network" or module.startswith("skorch"):
        requirements += [f"torch=={version('torch').split('+')[0]}", f"skorch=={version('skorch')}"]
    return requirements
