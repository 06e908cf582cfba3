"""The demo's work as a bare script, no pipeline: the same training and evaluation by hand.

Load breast_cancer, split 70/15/15 (stratified, seed 42), train XGBoost with the demo's
hyperparameters, then what the pipeline's evaluation job produces: the metrics on the train,
validation and test splits, the confusion matrix, ROC and precision-recall curves, the learning
curve (log loss per boosting round on train and validation), and a drift baseline (quantiles and
histograms of the training features). Run as a fresh process by pipeline_latency.py; prints its
own wall time (imports included).
"""

import time

started = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from xgboost import XGBClassifier  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=0.7, stratify=y, random_state=42)
X_val, X_test, y_val, y_test = train_test_split(
    X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=42
)
model = XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, n_jobs=2).fit(X_train, y_train)

scores = {}
for name, (features, target) in {
    "train": (X_train, y_train),
    "validation": (X_val, y_val),
    "test": (X_test, y_test),
}.items():
    proba = model.predict_proba(features)[:, 1]
    predicted = (proba > 0.5).astype(int)
    scores[name] = {
        "accuracy": metrics.accuracy_score(target, predicted),
        "f1": metrics.f1_score(target, predicted),
        "precision": metrics.precision_score(target, predicted),
        "recall": metrics.recall_score(target, predicted),
        "roc_auc": metrics.roc_auc_score(target, proba),
        "log_loss": metrics.log_loss(target, proba),
    }
proba = model.predict_proba(X_test)[:, 1]
for name, draw in {
    "confusion_matrix": lambda: metrics.ConfusionMatrixDisplay.from_predictions(y_test, proba > 0.5),
    "roc_curve": lambda: metrics.RocCurveDisplay.from_predictions(y_test, proba),
    "precision_recall": lambda: metrics.PrecisionRecallDisplay.from_predictions(y_test, proba),
}.items():
    draw()
    plt.savefig(out / f"{name}.png", dpi=100)
    plt.close("all")
rounds = np.unique(np.linspace(1, 200, 20).round().astype(int))
for features, target in ((X_train, y_train), (X_val, y_val)):
    curve = [
        metrics.log_loss(target, model.predict_proba(features, iteration_range=(0, int(k)))[:, 1])
        for k in rounds
    ]
    plt.plot(rounds, curve)
plt.savefig(out / "learning_curve.png", dpi=100)
plt.close("all")
baseline = {
    column: {
        "quantiles": np.quantile(X_train[column], [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).tolist(),
        "histogram": np.histogram(X_train[column], bins=10)[0].tolist(),
    }
    for column in X_train.columns
}
(out / "baseline.json").write_text(json.dumps(baseline))
print(f"bare_s={time.perf_counter() - started:.3f} test_f1={scores['test']['f1']:.4f}")
