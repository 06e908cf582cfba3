"""XGBoost training program: ``XGBClassifier`` / ``XGBRegressor`` under the training contract.

Same inputs and outputs as the scikit-learn program; both use ``common.program``. With
``early_stopping_rounds`` the preprocessor is fitted first, the validation
channel is transformed for ``eval_set``, and the saved ``Pipeline`` is assembled from the
fitted steps; prediction then uses the best iteration. Run it as
``python -m training_containers.xgboost.train``.
"""

from __future__ import annotations

from typing import Any

from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier, XGBRegressor

from training_containers.common.contract import JobConfig, TrainingContract, run
from training_containers.common.preprocessing import build_preprocessor, fit_preprocessor
from training_containers.common.program import (
    Dataset,
    build_metadata,
    load_dataset,
    report_metrics,
    resolve_hyperparameters,
)

#: Hyperparameters and defaults (mirrors XGBoostHyperparameters in mcp_server/core).
DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "max_depth": 6,
    "learning_rate": 0.3,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "min_child_weight": 1.0,
    "gamma": 0.0,
    "reg_alpha": 0.0,
    "reg_lambda": 1.0,
    "scale_pos_weight": 1.0,
    "early_stopping_rounds": None,
}
#: Threads per job (the machines have 2 cores).
N_JOBS = 2


def build_estimator(config: JobConfig, params: dict[str, Any]) -> XGBClassifier | XGBRegressor:
    """Return the unfitted XGBoost estimator for the task.

    Raises:
        ValueError: the algorithm is not ``xgboost``.
    """
    if config.algorithm != "xgboost":
        raise ValueError(f"the XGBoost program trains xgboost, not {config.algorithm!r}")
    cls = XGBClassifier if config.task == "classification" else XGBRegressor
    if params.get("scale_pos_weight") == 1.0:  # XGBoost's default; it warns when unused
        params = {k: v for k, v in params.items() if k != "scale_pos_weight"}
    return cls(**params, tree_method="hist", n_jobs=N_JOBS, random_state=config.seed)


def fit_model(data: Dataset, params: dict[str, Any]) -> Pipeline:
    """Fit the preprocessor, then the booster (on ``eval_set`` = validation when early stopping).

    Raises:
        ValueError: ``early_stopping_rounds`` is set but there is no validation channel.
    """
    estimator = build_estimator(data.config, params)
    preprocessor = build_preprocessor(data.config.preprocessing, data.feature_types, data.config.task)
    preprocessor, encoded = fit_preprocessor(preprocessor, data.X_train, data.y_train)
    fit_args: dict[str, Any] = {"verbose": False}
    if params.get("early_stopping_rounds"):
        if data.X_validation is None:
            raise ValueError(
                "early_stopping_rounds needs a validation channel; add a validation split or "
                "remove early_stopping_rounds"
            )
        fit_args["eval_set"] = [(preprocessor.transform(data.X_validation), data.y_validation)]
    estimator.fit(encoded, data.y_train, **fit_args)
    return Pipeline([("preprocess", preprocessor), ("model", estimator)])


def main() -> None:
    """Train, report and save one XGBoost model under the training contract."""
    contract = TrainingContract.from_env()
    data = load_dataset(contract)
    params = resolve_hyperparameters("xgboost", data.config.hyperparameters, DEFAULTS)
    model = fit_model(data, params)
    report_metrics(model, data)
    booster = model.named_steps["model"]
    best = getattr(booster, "best_iteration", None) if params.get("early_stopping_rounds") else None
    contract.save_model(model, build_metadata(data, params, best_iteration=best))


if __name__ == "__main__":
    run(main)
