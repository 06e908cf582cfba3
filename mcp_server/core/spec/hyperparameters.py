"""Typed hyperparameters per algorithm, with the ranges each library accepts.

Each model lists the hyperparameters the training container passes to the estimator, with the
estimator's own default. Ranges come from the libraries' parameter documentation
(scikit-learn 1.9 estimator docstrings, XGBoost 3.2 "XGBoost Parameters", skorch 1.4 and
PyTorch 2.13 for the neural network, Ray RLlib 2.60's ``PPOConfig`` and ``DQNConfig``, and Mnih
et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning", for A3C). Unknown names are
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


class KMeansHyperparameters(_Hyperparameters):
    """k-means clustering (``sklearn.cluster.KMeans``)."""

    n_clusters: int = Field(8, ge=2, le=10_000, description="number of clusters k")
    init: Literal["k-means++", "random"] = "k-means++"
    n_init: int = Field(10, ge=1, le=1000, description="restarts; the lowest inertia wins")
    max_iter: int = Field(300, ge=1, le=100_000)
    tol: float = Field(1e-4, ge=0, description="relative centre movement that counts as converged")


class DBSCANHyperparameters(_Hyperparameters):
    """Density-based clustering (``sklearn.cluster.DBSCAN``), in the preprocessed feature space.

    New rows take the cluster of their nearest core sample within ``eps``, else noise (-1).
    """

    eps: float = Field(
        0.5, gt=0, description="neighbourhood radius, in scaled units (raw units with scaling: none)"
    )
    min_samples: int = Field(5, ge=1, le=100_000, description="neighbours (itself included) of a core point")
    metric: Literal["euclidean", "manhattan", "chebyshev", "cosine"] = "euclidean"


class PCAHyperparameters(_Hyperparameters):
    """Principal component analysis (``sklearn.decomposition.PCA``)."""

    n_components: Annotated[int, Field(ge=1, le=10_000)] | Annotated[float, Field(gt=0, lt=1)] = Field(
        2, description="components kept, or the fraction of variance to keep (0 < x < 1)"
    )
    whiten: bool = False
    svd_solver: Literal["auto", "full", "covariance_eigh", "arpack", "randomized"] = "auto"


class TSNEHyperparameters(_Hyperparameters):
    """t-distributed stochastic neighbour embedding (``sklearn.manifold.TSNE``)."""

    n_components: int = Field(2, ge=1, le=3, description="embedding dimensions (Barnes-Hut allows 3)")
    perplexity: float = Field(
        30.0, ge=1, le=100, description="effective number of neighbours; below the training rows"
    )
    early_exaggeration: float = Field(12.0, ge=1)
    learning_rate: Literal["auto"] | Annotated[float, Field(gt=0)] = "auto"
    max_iter: int = Field(1000, ge=250, le=100_000)
    metric: Literal["euclidean", "manhattan", "cosine"] = "euclidean"


class PPOHyperparameters(_Hyperparameters):
    """Proximal policy optimisation (Ray RLlib ``PPOConfig``).

    Defaults solve CartPole-v1 (mean training return 450) in about 56k environment steps on one
    process: RLlib's CartPole example's clip and GAE settings with a larger step size, smaller
    batches and a separate value network (``vf_share_layers=False``).
    """

    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam step size")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    lambda_: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    clip_param: float = Field(0.2, gt=0, le=1, description="PPO's ratio clip epsilon")
    entropy_coeff: float = Field(0.0, ge=0)
    vf_loss_coeff: float = Field(0.5, ge=0)
    train_batch_size: int = Field(2000, ge=32, le=1_000_000, description="environment steps per iteration")
    minibatch_size: int = Field(128, ge=1, le=100_000)
    num_epochs: int = Field(10, ge=1, le=100, description="passes over each train batch")
    hidden_layers: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [64, 64], min_length=1, max_length=8
    )
    num_env_runners: int = Field(
        0, ge=0, le=64, description="sampling worker processes; 0 samples in the training process"
    )


class DQNHyperparameters(_Hyperparameters):
    """Deep Q-network with double Q-learning and a dueling head (Ray RLlib ``DQNConfig``).

    Defaults follow RLlib's CartPole DQN example (prioritized replay, 3-step returns, one hidden
    layer of 256); judge DQN on the greedy evaluation, which can trail its training return.
    """

    learning_rate: float = Field(5e-4, gt=0, le=1)
    gamma: float = Field(0.99, ge=0, le=1)
    train_batch_size: int = Field(32, ge=1, le=100_000, description="replayed transitions per update")
    replay_buffer_capacity: int = Field(50_000, ge=100, le=10_000_000)
    target_network_update_freq: int = Field(500, ge=1, description="environment steps between syncs")
    epsilon_timesteps: int = Field(10_000, ge=1, description="steps over which exploration decays")
    final_epsilon: float = Field(0.02, ge=0, le=1)
    n_step: int = Field(3, ge=1, le=100, description="steps summed in each TD target")
    double_q: bool = True
    dueling: bool = True
    hidden_layers: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [256], min_length=1, max_length=8
    )
    num_env_runners: int = Field(
        0, ge=0, le=64, description="sampling worker processes; 0 samples in the training process"
    )


class A3CHyperparameters(_Hyperparameters):
    """Asynchronous advantage actor-critic (Mnih et al. 2016): lock-free workers, shared Adam.

    Defaults solve CartPole-v1 (mean training return 450) in 30k to 45k environment steps with two
    workers (``training_containers/rl/a3c.py``).
    """

    learning_rate: float = Field(5e-3, gt=0, le=1, description="shared Adam step size")
    gamma: float = Field(0.99, ge=0, le=1)
    n_steps: int = Field(20, ge=1, le=1000, description="t_max: steps per worker update")
    entropy_coeff: float = Field(0.01, ge=0)
    value_loss_coeff: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(40.0, gt=0)
    num_workers: int = Field(2, ge=1, le=64, description="worker processes sharing the parameters")
    hidden_layers: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [128], min_length=1, max_length=8
    )


#: The hyperparameter model of each algorithm the training containers implement.
HYPERPARAMETER_MODELS: dict[str, type[_Hyperparameters]] = {
    "xgboost": XGBoostHyperparameters,
    "random_forest": RandomForestHyperparameters,
    "logistic_regression": LogisticRegressionHyperparameters,
    "linear_regression": LinearRegressionHyperparameters,
    "neural_network": NeuralNetworkHyperparameters,
    "kmeans": KMeansHyperparameters,
    "dbscan": DBSCANHyperparameters,
    "pca": PCAHyperparameters,
    "tsne": TSNEHyperparameters,
    "ppo": PPOHyperparameters,
    "dqn": DQNHyperparameters,
    "a3c": A3CHyperparameters,
}
