"""Evaluation program: score a trained model under the SageMaker Processing contract.

Reads the model (and, except for control tasks, the splits) under ``/opt/ml/processing/input/``
(``processing``), hands the work to the task's family module, then writes
``/opt/ml/processing/output/report.json``: ``evaluation_id``, ``task``, ``algorithm``, the
family's fields and ``duration_s`` (seconds). The report is written last, atomically: its
presence means the job completed. Every family returns at least ``metrics`` (the held-out
figures the judge compares with the thresholds), ``train_metrics`` and ``plots`` (name -> file
name relative to ``output/``):

- classification and regression (``supervised``): test, validation and train metrics, gaps,
  diagnostic plots, learning curve, SHAP and fairness when asked for, the drift baseline;
- clustering (``clustering``): silhouette, Davies-Bouldin, Calinski-Harabasz, cluster sizes;
- dimensionality reduction (``embedding``): explained variance ratio (PCA), trustworthiness,
  a 2-D scatter of the embedding;
- control (``control``): mean and standard deviation of the return over greedy evaluation
  episodes, mean episode length, the training return curve.

Metrics are also printed as ``test_silhouette=0.55`` lines. Run it as
``python -m training_containers.evaluation.evaluate``.
"""

from __future__ import annotations

import importlib
import time

from training_containers.evaluation.processing import (
    EvaluationConfig,
    ProcessingContract,
    run,
    say,
    write_json,
)

REPORT = "report.json"
#: The module (under ``training_containers.evaluation``) that evaluates each task.
FAMILY_BY_TASK = {
    "classification": "supervised",
    "regression": "supervised",
    "clustering": "clustering",
    "dimensionality_reduction": "embedding",
    "control": "control",
}


def main() -> None:
    """Evaluate the mounted model with its task's family module and write ``report.json``."""
    started = time.perf_counter()
    contract = ProcessingContract.from_env().unpacked()
    config = EvaluationConfig.read(contract.config_file)
    family = importlib.import_module(f"training_containers.evaluation.{FAMILY_BY_TASK[config.task]}")
    fields = family.evaluate(contract, config)
    report = {
        "evaluation_id": config.evaluation_id,
        "task": config.task,
        "algorithm": config.algorithm or fields.pop("algorithm", ""),
        **fields,
        "duration_s": round(time.perf_counter() - started, 3),
    }
    write_json(contract, REPORT, report)
    say(f"evaluation {config.evaluation_id} completed in {report['duration_s']} s")


if __name__ == "__main__":
    run(main)
