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
        """Evaluate a trained model as a processing job: metrics, plots, explanations, fairness, baseline.

        The job (``training_containers/evaluation``, under the SageMaker Processing contract)
        scores the model on the test, validation and train splits (gaps = train minus test), draws
        the confusion matrix, ROC and precision-recall curves (classification) or residual and
        predicted-vs-actual plots (regression) and a learning curve, explains the model with SHAP
        when ``explainability`` is ``shap``, compares groups with fairlearn when ``fairness`` is
        set, and saves a drift baseline of the training data. Results go under
        evaluations/{evaluation_id}/ and to the tracking run; an id evaluated before is returned
        without running again.

        Returns:
            EvaluationReport: metrics per split and gaps, n_test (rows), class_counts, plots
            (name -> PNG URI), shap (explainer, sample size, top features by mean |SHAP|),
            fairness (by group, difference, ratio, passed), baseline_uri, report_uri, log_uri,
            duration_s (seconds).

        Raises:
            EvaluationError: the model or a split cannot be loaded or scored, a sensitive column
                is missing, or the job exceeded max_runtime_s (MaxRuntimeExceeded).
        """
        return backends.evaluation.evaluate_model(request)
