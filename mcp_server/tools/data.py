"""Data tools: prepare_dataset."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import DatasetRef
from mcp_server.core.spec.schema import TrainingSpec
from mcp_server.settings import Settings
from mcp_server.tools.guard import WRITE, guarded


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the data tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def prepare_dataset(
        spec: Annotated[
            TrainingSpec,
            Field(description="the validated training spec; its dataset and preprocessing sections are used"),
        ],
        feedback_uri: Annotated[
            str | None,
            Field(
                max_length=2048,
                description="a monitoring job's feedback.parquet: labelled captured rows to add to the data",
            ),
        ] = None,
    ) -> DatasetRef:
        """Load, clean, split and version the spec's dataset, in a data preparation processing job.

        Runs ``training_containers/preparation`` on ``spec.dataset.source`` (sklearn://NAME, and
        file://PATH locally or s3://BUCKET/KEY on AWS, to CSV or Parquet): it drops
        duplicates and rows with missing values when asked, encodes a classification target as
        codes 0..K-1, splits train/validation/test with the spec's fractions and seed (stratified
        for classification), removes outliers from the training split, and stores raw data and
        splits under datasets/{dataset_id}/. An unchanged source with the same spec returns the
        published result without a new job. With ``feedback_uri`` (``retraining.feedback``), the
        labelled captured rows of a monitoring job are added before cleaning; a label that is not
        a value of the target's type is dropped and counted in ``rows_removed["feedback"]``.

        Returns:
            DatasetRef: dataset_id, data_version (12 hex digits of the content's SHA-256), split
            URIs and sizes (rows), feature names and types, class labels, rows removed.

        Raises:
            DatasetError: unreadable source, missing target column, a split too small, a
                feedback file outside the monitoring jobs' outputs, or a preparation job that
                failed (its reason and log).
        """
        return backends.data.prepare_dataset(spec, feedback_uri)
