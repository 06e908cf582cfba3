"""Typed hyperparameters per algorithm, with the ranges each library accepts.

Each model lists the hyperparameters the training container passes to the estimator, with the
estimator's own default. Ranges come from the libraries' parameter documentation
(scikit-learn 1.9 estimator docstrings, XGBoost 3.2 "XGBoost Parameters", skorch 1.4 and
PyTorch 2.13 for the neural network). Unknown names are
errors, so a typo never silently trains with a default.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class XGBoostHyperparameters(_Hyperparameters):
    """Gradient-boosted trees (``xgboost.XGBClassifier`` / ``XGBRegressor``)."""

    n_estimators: int = Field(200, ge=1, le=10_000, description="boosting rounds")
    max_depth: int = Field(6, ge=1, le=32, description="maximum tree depth")
    learning_rate: float = Field(0.3, gt=0, le=1, description="shrinkage (eta), a fraction")
    subsample: float = Field(1.0, gt=0, le=1, description="row fraction per tree")
    colsample_bytree: float = Field(1.0, gt=0, le=1, description="column fraction per tree")
    min_child_weight: float = Field(1.0, ge=0, description="minimum hessian sum in a leaf")
    gamma: float = Field(0.0, ge=0, description="minimum loss reduction to split")
    reg_alpha: float = Field(0.0, ge=0, description="L1 regularisation on leaf weights")
    reg_lambda: float = Field(1.0, ge=0, description="L2 regularisation on leaf weights")
    scale_pos_weight: float = Field(1.0, gt=0, description="weight of positive class (binary)")
    early_stopping_rounds: int | None = Field(
        None, ge=1, le=1000, description="stop when the validation metric stalls this many rounds"
    )


class RandomForestHyperparameters(_Hyperparameters):
    """Random forest (``sklearn.ensemble.RandomForestClassifier`` / ``Regressor``)."""

    n_estimators: int = Field(100, ge=1, le=10_000)
    max_depth: int | None = Field(None, ge=1, le=128)
    min_samples_split: int = Field(2, ge=2)
    min_samples_leaf: int = Field(1, ge=1)
    max_features: Literal["sqrt", "log2"] | Annotated[float, Field(gt=0, le=1)] | None = Field(
        "sqrt", description="features per split: 'sqrt', 'log2', a fraction in (0, 1], or null"
    )
    bootstrap: bool = True
    class_weight: Literal["balanced", "balanced_subsample"] | None = Field(
        None, description="classification only"
    )


class LogisticRegressionHyperparameters(_Hyperparameters):
    """Logistic regression (``sklearn.linear_model.LogisticRegression``)."""

    C: float = Field(1.0, gt=0, description="inverse regularisation strength")
    l1_ratio: float = Field(
        0.0, ge=0, le=1, description="0 is L2, 1 is L1, in between elastic-net (saga solver)"
    )
    max_iter: int = Field(1000, ge=1, le=100_000)
    class_weight: Literal["balanced"] | None = None


class LinearRegressionHyperparameters(_Hyperparameters):
    """Ordinary least squares, or ridge when ``alpha`` > 0 (``sklearn.linear_model``)."""

    fit_intercept: bool = True
    alpha: float = Field(0.0, ge=0, description="L2 penalty; 0 is ordinary least squares")
    positive: bool = False


class NeuralNetworkHyperparameters(_Hyperparameters):
    """Multilayer perceptron (PyTorch module in ``skorch.NeuralNetClassifier`` / ``Regressor``)."""

    hidden_layers: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [64, 32],
        min_length=1,
        max_length=16,
        description="width of each hidden layer (ReLU), input side first",
    )
    dropout: float = Field(0.1, ge=0, le=0.9, description="dropout probability after each hidden layer")
    learning_rate: float = Field(0.001, gt=0, le=1, description="Adam step size")
    batch_size: int = Field(32, ge=1, le=4096, description="rows per gradient step")
    epochs: int = Field(100, ge=1, le=1000, description="most passes over the training split")
    early_stopping_patience: int = Field(
        10, ge=1, le=100, description="epochs without a lower validation loss before stopping"
    )
    weight_decay: float = Field(0.0, ge=0, description="Adam's L2 penalty on the weights")


#: The hyperparameter model of each algorithm the training containers implement.
HYPERPARAMETER_MODELS: dict[str, type[_Hyperparameters]] = {
    "xgboost": XGBoostHyperparameters,
    "random_forest": RandomForestHyperparameters,
    "logistic_regression": LogisticRegressionHyperparameters,
    "linear_regression": LinearRegressionHyperparameters,
    "neural_network": NeuralNetworkHyperparameters,
}
