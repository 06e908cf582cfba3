"""The local MLflow tracking and registry store: a SQLite database in the workspace.

Several processes share one workspace (``mlops run`` in parallel, ``mlops serve``, tuning
trials). MLflow creates and migrates the SQLite schema when a process first opens the store;
two processes doing that at once fail (``table ... already exists``). The first opening in each
process, and every experiment creation, therefore happen under a file lock in the workspace
(``mlflow.db.lock``) as well as a thread lock.
"""

from __future__ import annotations

import threading

import mlflow
from filelock import FileLock
from mlflow.tracking import MlflowClient

from mcp_server.backends.local.files import exclusive
from mcp_server.settings import Settings

_lock = threading.Lock()
_opened: set[str] = set()


def store_lock(settings: Settings) -> FileLock:
    """The workspace's cross-process lock on the MLflow store's schema (``{home}/mlflow.db.lock``)."""
    return exclusive(settings.home / "mlflow.db.lock")


def open_client(settings: Settings) -> MlflowClient:
    """Return an MLflow client on the workspace's SQLite store (created on first use).

    The first call in a process opens the store, which creates or migrates the schema, under
    ``store_lock``; later calls only build a client.

    Args:
        settings: where the workspace is (``settings.tracking_uri``).

    Returns:
        A client whose tracking and registry URIs are both the SQLite database.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    uri = settings.tracking_uri
    with _lock:
        if uri in _opened:
            return MlflowClient(tracking_uri=uri, registry_uri=uri)
        with store_lock(settings):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        _opened.add(uri)
    return client


def ensure_experiment(client: MlflowClient, name: str, settings: Settings) -> str:
    """Return the id of experiment ``name``, creating it with its artifacts in the workspace.

    Args:
        client: an MLflow client from ``open_client``.
        name: the experiment name, e.g. ``issue-12``.
        settings: gives the artifact root (``settings.artifact_root``).

    Returns:
        The experiment id.
    """
    with _lock, store_lock(settings):  # another process may create the same experiment
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (settings.artifact_root / name).as_uri()
        return client.create_experiment(name, artifact_location=location)


__all__ = ["mlflow", "open_client", "ensure_experiment", "store_lock"]
