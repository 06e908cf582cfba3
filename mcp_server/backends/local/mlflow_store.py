"""The local MLflow tracking and registry store: a SQLite database in the workspace."""

from __future__ import annotations

import threading

import mlflow
from mlflow.tracking import MlflowClient

from mcp_server.settings import Settings

_lock = threading.Lock()


def open_client(settings: Settings) -> MlflowClient:
    """Return an MLflow client on the workspace's SQLite store (created on first use).

    Args:
        settings: where the workspace is (``settings.tracking_uri``).

    Returns:
        A client whose tracking and registry URIs are both the SQLite database.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    with _lock:  # the first client creates the schema; two threads must not race on it
        client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
        client.search_experiments(max_results=1)
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
    with _lock:
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (settings.artifact_root / name).as_uri()
        return client.create_experiment(name, artifact_location=location)


__all__ = ["mlflow", "open_client", "ensure_experiment"]
