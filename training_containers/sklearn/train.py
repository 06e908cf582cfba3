"""scikit-learn training program: random forest, logistic and linear regression, k-means, DBSCAN, PCA, t-SNE.

Follows the SageMaker training contract (``training_containers.common.contract``): reads the
hyperparameters and the ``train`` (required) and ``validation`` (optional) channels, fits
``Pipeline([("preprocess", ...), ("model", estimator)])``, prints ``train_*`` and
``validation_*`` metrics to stdout, and writes ``model.joblib`` and ``metadata.json`` to the
model folder. Classification and regression are trained here; clustering and dimensionality
reduction (``_task``) by ``training_containers.sklearn.unsupervised``, which also writes the
training rows' ``labels.parquet`` or ``embedding.parquet``. Run it as
``python -m training_containers.sklearn.train``.
"""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from training_containers.common.contract import JobConfig, TrainingContract, run
from training_containers.common.preprocessing import build_preprocessor, fit_preprocessor
from training_containers.common.program import (
    build_metadata,
    load_dataset,
    report_metrics,
    resolve_hyperparameters,
)
from training_containers.common.unsupervised import TASKS as UNSUPERVISED_TASKS
from training_containers.sklearn import unsupervised

#: Each algorithm's hyperparameters and defaults (mirrors mcp_server/core/spec/hyperparameters.py;
#: the container does not import the server).
DEFAULTS: dict[str, dict[str, Any]] = {
    "random_forest": {
        "n_estimators": 100,
        "max_depth": None,
        "min_samples_split": 2,
        "min_samples_leaf": 1,
        "max_features": "sqrt",
        "bootstrap": True,
        "class_weight": None,
    },
    "logistic_regression": {"C": 1.0, "l1_ratio": 0.0, "max_iter": 1000, "class_weight": None},
    "linear_regression": {"fit_intercept": True, "alpha": 0.0, "positive": False},
}


def build_estimator(config: JobConfig, params: dict[str, Any]) -> Any:
    """Return the unfitted scikit-learn estimator for the job's algorithm and task.

    Raises:
        ValueError: the algorithm is not in this family or does not solve the task.
    """
    classification = config.task == "classification"
    if config.algorithm == "random_forest":
        forest = dict(params, random_state=config.seed, n_jobs=-1)
        if classification:
            return RandomForestClassifier(**forest)
        if forest.pop("class_weight") is not None:
            raise ValueError("class_weight applies to classification only; remove it for regression")
        return RandomForestRegressor(**forest)
    if config.algorithm == "logistic_regression" and classification:
        solver = "saga" if params["l1_ratio"] > 0 else "lbfgs"
        return LogisticRegression(**params, solver=solver, random_state=config.seed)
    if config.algorithm == "linear_regression" and not classification:
        if params["alpha"] > 0:
            return Ridge(**params, random_state=config.seed)
        return LinearRegression(fit_intercept=params["fit_intercept"], positive=params["positive"])
    raise ValueError(f"the scikit-learn program does not train {config.algorithm} for {config.task}")


def main() -> None:
    """Train, report and save one scikit-learn model under the training contract."""
    contract = TrainingContract.from_env()
    config = JobConfig.from_hyperparameters(contract.read_hyperparameters())
    if config.task in UNSUPERVISED_TASKS:
        unsupervised.train(contract, config)
        return
    data = load_dataset(contract)
    algorithm = data.config.algorithm
    if algorithm not in DEFAULTS:
        raise ValueError(f"the scikit-learn program trains {sorted(DEFAULTS)}, not {algorithm!r}")
    params = resolve_hyperparameters(algorithm, data.config.hyperparameters, DEFAULTS[algorithm])
    estimator = build_estimator(data.config, params)
    preprocessor = build_preprocessor(data.config.preprocessing, data.feature_types, data.config.task)
    preprocessor, encoded = fit_preprocessor(preprocessor, data.X_train, data.y_train)
    estimator.fit(encoded, data.y_train)
    model = Pipeline([("preprocess", preprocessor), ("model", estimator)])
    report_metrics(model, data)
    contract.save_model(model, build_metadata(data, params))


if __name__ == "__main__":
    run(main)
