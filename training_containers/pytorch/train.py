"""PyTorch training program: a multilayer perceptron through skorch, under the training contract.

Same inputs and outputs as the scikit-learn program (``common.program``). The preprocessor is
fitted first; the network (``Linear`` → ``ReLU`` → ``Dropout`` per hidden layer, then a linear
head) is then trained with Adam on the encoded rows cast to float32. Classification trains
logits with ``CrossEntropyLoss`` (skorch applies the softmax in ``predict_proba``); regression
trains ``MSELoss`` on a (n,) output, through a frozen affine layer that maps the standardised
output back to the target's mean and scale. With a validation channel, skorch's
``EarlyStopping`` watches the validation loss and restores the best epoch's weights; without
one, the network trains for ``epochs`` epochs.

The saved ``Pipeline([("preprocess", ...), ("model", Pipeline([("float32", ...), ("net", net)]))])``
holds scikit-learn, skorch and torch classes only, so it loads wherever those are installed.
Run it as ``python -m training_containers.pytorch.train``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import skorch
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping
from skorch.dataset import Dataset as SkorchDataset
from skorch.helper import predefined_split

from training_containers.common.contract import TrainingContract, run
from training_containers.common.preprocessing import build_preprocessor, fit_preprocessor
from training_containers.common.program import (
    Dataset,
    build_metadata,
    load_dataset,
    report_metrics,
    resolve_hyperparameters,
)

#: Hyperparameters and defaults (mirrors NeuralNetworkHyperparameters in mcp_server/core).
DEFAULTS: dict[str, Any] = {
    "hidden_layers": [64, 32],
    "dropout": 0.1,
    "learning_rate": 0.001,
    "batch_size": 32,
    "epochs": 100,
    "early_stopping_patience": 10,
    "weight_decay": 0.0,
}
#: Intra-op threads per job. These networks train on small batches, where handing each
#: operation to a second thread costs more than it gives (PyTorch's CPU performance guide);
#: measured here, breast cancer for 26 epochs: 2.4 s on 1 thread, 3.6 s on 2. One thread also
#: leaves the other core to a concurrent job instead of oversubscribing it.
N_THREADS = 1


def build_module(
    n_inputs: int, n_outputs: int, params: dict[str, Any], y: np.ndarray | None
) -> torch.nn.Sequential:
    """Return the MLP: per hidden layer ``Linear``, ``ReLU``, ``Dropout``; then a linear head.

    Args:
        n_inputs: encoded feature count.
        n_outputs: K logits for classification, 1 for regression.
        params: ``hidden_layers`` (widths) and ``dropout``.
        y: the regression target, shape (n,), whose mean and standard deviation a frozen
            ``Linear(1, 1)`` applies to the output, then flattened to shape (n,); None for
            classification (output shape (n, K)).
    """
    layers: list[torch.nn.Module] = []
    width = n_inputs
    for hidden in params["hidden_layers"]:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(params["dropout"])]
        width = hidden
    layers.append(torch.nn.Linear(width, n_outputs))
    if y is not None:
        scale = torch.nn.Linear(1, 1)
        with torch.no_grad():
            scale.weight.fill_(float(np.std(y)) or 1.0)
            scale.bias.fill_(float(np.mean(y)))
        scale.requires_grad_(False)
        layers += [scale, torch.nn.Flatten(start_dim=0)]
    return torch.nn.Sequential(*layers)


def build_net(data: Dataset, params: dict[str, Any], n_inputs: int, validation: Any) -> Any:
    """Return the unfitted skorch net, early stopping on ``validation`` when it is given.

    Args:
        data: the job's splits (task, classes, regression target).
        params: the resolved hyperparameters.
        n_inputs: encoded feature count.
        validation: a skorch ``Dataset`` of the encoded validation rows, or None.
    """
    classify = data.config.task == "classification"
    n_outputs, target = (data.n_classes or 2, None) if classify else (1, data.y_train)
    module = build_module(n_inputs, n_outputs, params, target)
    callbacks = []
    if validation is not None:
        callbacks.append(
            EarlyStopping(monitor="valid_loss", patience=params["early_stopping_patience"], load_best=True)
        )
    cls = NeuralNetClassifier if classify else NeuralNetRegressor
    return cls(
        module,
        criterion=torch.nn.CrossEntropyLoss if classify else torch.nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=params["learning_rate"],
        optimizer__weight_decay=params["weight_decay"],
        batch_size=params["batch_size"],
        max_epochs=params["epochs"],
        train_split=None if validation is None else predefined_split(validation),
        iterator_train__shuffle=True,
        callbacks=callbacks,
        device="cpu",
        verbose=0,
    )


def fit_model(data: Dataset, params: dict[str, Any]) -> Pipeline:
    """Fit the preprocessor, then the network on the encoded float32 rows (seeded).

    Returns:
        ``Pipeline([("preprocess", ...), ("model", Pipeline([("float32", ...), ("net", net)]))])``.
    """
    torch.manual_seed(data.config.seed)
    torch.set_num_threads(N_THREADS)
    preprocessor = build_preprocessor(data.config.preprocessing, data.feature_types, data.config.task)
    preprocessor, encoded = fit_preprocessor(preprocessor, data.X_train, data.y_train)
    to_float32 = FunctionTransformer(
        np.asarray, kw_args={"dtype": np.float32}, feature_names_out="one-to-one"
    ).fit(encoded)
    target_dtype = np.int64 if data.config.task == "classification" else np.float32
    validation = None
    if data.X_validation is not None and data.y_validation is not None:
        X_val = to_float32.transform(preprocessor.transform(data.X_validation))
        validation = SkorchDataset(X_val, data.y_validation.astype(target_dtype))
    net = build_net(data, params, encoded.shape[1], validation)
    net.fit(to_float32.transform(encoded), data.y_train.astype(target_dtype))
    net.train_split = None  # do not keep the validation rows inside the saved model
    head = Pipeline([("float32", to_float32), ("net", net)])
    return Pipeline([("preprocess", preprocessor), ("model", head)])


def training_summary(net: Any) -> dict[str, Any]:
    """Epochs run, best epoch (1-based, lowest validation loss) and whether training stopped early."""
    epochs = len(net.history)
    valid = [row.get("valid_loss") for row in net.history]
    best = int(np.argmin(valid)) + 1 if valid and None not in valid else None
    return {"epochs_trained": epochs, "best_epoch": best, "stopped_early": epochs < net.max_epochs}


def main() -> None:
    """Train, report and save one neural network under the training contract."""
    contract = TrainingContract.from_env()
    data = load_dataset(contract)
    if data.config.algorithm != "neural_network":
        raise ValueError(f"the PyTorch program trains neural_network, not {data.config.algorithm!r}")
    params = resolve_hyperparameters("neural_network", data.config.hyperparameters, DEFAULTS)
    model = fit_model(data, params)
    report_metrics(model, data)
    metadata = build_metadata(data, params, **training_summary(model["model"]["net"]))
    metadata["library_versions"].update(torch=torch.__version__, skorch=skorch.__version__)
    contract.save_model(model, metadata)


if __name__ == "__main__":
    run(main)
