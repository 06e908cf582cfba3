"""What the spec may name: model types, tasks, algorithms and metrics, and what runs today.

Pure data, no I/O. The spec validator, the judge and the training backends all read these
tables, so a new algorithm or metric is added here once.
"""

from __future__ import annotations

from typing import Literal, get_args

ModelType = Literal["supervised_learning", "unsupervised_learning", "reinforcement_learning"]
Task = Literal["classification", "regression", "clustering", "dimensionality_reduction", "control"]
Algorithm = Literal[
    "random_forest",
    "xgboost",
    "neural_network",
    "linear_regression",
    "logistic_regression",
    "kmeans",
    "dbscan",
    "pca",
    "tsne",
    "ppo",
    "dqn",
    "a3c",
]

MODEL_TYPES: tuple[str, ...] = get_args(ModelType)
TASKS: tuple[str, ...] = get_args(Task)
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)

#: Which tasks belong to which model type.
TASKS_BY_MODEL_TYPE: dict[str, tuple[str, ...]] = {
    "supervised_learning": ("classification", "regression"),
    "unsupervised_learning": ("clustering", "dimensionality_reduction"),
    "reinforcement_learning": ("control",),
}

#: Which algorithms solve which task (the spec accepts these combinations).
ALGORITHMS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("random_forest", "xgboost", "logistic_regression", "neural_network"),
    "regression": ("linear_regression", "random_forest", "xgboost", "neural_network"),
    "clustering": ("kmeans", "dbscan"),
    "dimensionality_reduction": ("pca", "tsne"),
    "control": ("ppo", "dqn", "a3c"),
}

#: The (task, algorithm) pairs the training containers implement. A combination that the spec
#: grammar accepts but that is missing here is refused at validation, never accepted and ignored.
SUPPORTED_TRAINING: frozenset[tuple[str, str]] = frozenset(
    (task, algorithm) for task, algorithms in ALGORITHMS_BY_TASK.items() for algorithm in algorithms
)

#: The training-container family (folder under ``training_containers/``) of each algorithm.
FAMILY_BY_ALGORITHM: dict[str, str] = {
    "random_forest": "sklearn",
    "logistic_regression": "sklearn",
    "linear_regression": "sklearn",
    "kmeans": "sklearn",
    "dbscan": "sklearn",
    "pca": "sklearn",
    "tsne": "sklearn",
    "xgboost": "xgboost",
    "neural_network": "pytorch",
    "ppo": "rl",
    "dqn": "rl",
    "a3c": "rl",
}

#: Tasks whose dataset has a target column that the model predicts.
SUPERVISED_TASKS: tuple[str, ...] = ("classification", "regression")

#: Algorithms with no transform or predict for new rows: their outputs cover the training rows
#: only, so they are registered but never deployed as an endpoint (scikit-learn's ``TSNE`` has
#: ``fit_transform`` and no ``transform``).
NOT_SERVABLE: dict[str, str] = {
    "tsne": "t-SNE has no transform for new points: it embeds only the rows it was fitted on",
}

#: The metrics each task's evaluation produces. Names follow scikit-learn's metric functions.
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
    "clustering": ("silhouette", "davies_bouldin", "calinski_harabasz"),
    "dimensionality_reduction": ("explained_variance_ratio", "trustworthiness"),
    "control": ("mean_return", "std_return", "mean_episode_length"),
}

#: Metrics that are fractions in [0, 1]: a threshold on them outside that range is an error.
FRACTION_METRICS: frozenset[str] = frozenset(
    {"accuracy", "precision", "recall", "f1", "roc_auc", "explained_variance_ratio", "trustworthiness"}
)

#: Metrics for which a smaller value is better: a threshold on them is a ceiling, not a floor.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"log_loss", "rmse", "mae", "mape", "davies_bouldin", "std_return"}
)

#: The metrics reported when the spec lists none (trustworthiness for dimensionality reduction:
#: PCA and t-SNE both produce it; t-SNE has no explained variance ratio).
DEFAULT_METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
    "clustering": ("silhouette",),
    "dimensionality_reduction": ("trustworthiness",),
    "control": ("mean_return",),
}

#: Datasets shipped inside scikit-learn that ``sklearn://NAME`` may name (no download needed).
SKLEARN_DATASETS: tuple[str, ...] = ("iris", "wine", "breast_cancer", "diabetes", "digits")


def metric_direction(metric: str) -> Literal["maximize", "minimize"]:
    """Return whether a larger or a smaller value of ``metric`` is better.

    Args:
        metric: a metric name from ``METRICS_BY_TASK``.

    Returns:
        ``"minimize"`` for error and loss metrics (``LOWER_IS_BETTER``), else ``"maximize"``.
    """
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"
