"""Evaluation tools: evaluate_model."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import EvaluationReport, EvaluationRequest
from mcp_server.settings import Settings
from mcp_server.tools.guard import WRITE, guarded


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the evaluation tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def evaluate_model(
        request: Annotated[EvaluationRequest, Field(description="model URI, dataset, task, metrics")],
    ) -> EvaluationReport:
        """Score a trained model on the dataset's held-out test split and draw its plots.

        Classification: accuracy, precision, recall, f1, roc_auc, log_loss, a confusion matrix
        and a ROC curve. Regression: rmse, mae, r2, mape (a fraction), residual and
        predicted-vs-actual plots. Results are stored under evaluations/{evaluation_id}/ and
        logged to the tracking run when one is given.

        Returns:
            EvaluationReport: metrics (name -> value), n_test (rows), plots (name -> PNG URI),
            report_uri, duration_s (seconds).

        Raises:
            EvaluationError: the model or the test split cannot be loaded or scored.
        """
        return backends.evaluation.evaluate_model(request)
