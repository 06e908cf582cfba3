"""The evaluation processing job: metrics, plots, SHAP, fairness and a drift baseline.

Runs under the SageMaker Processing contract (``training_containers.evaluation.processing``);
``python -m training_containers.evaluation.evaluate`` is the program.
"""
