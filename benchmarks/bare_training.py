"""The demo's work as a bare script: load, split, train XGBoost, evaluate, plot. No pipeline.

Run as a fresh process by pipeline_latency.py; prints its own wall time (imports included).
"""

import time

started = time.perf_counter()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay, f1_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from xgboost import XGBClassifier  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=0.7, stratify=y, random_state=42)
X_val, X_test, y_val, y_test = train_test_split(
    X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=42
)
model = XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, n_jobs=2).fit(X_train, y_train)
proba = model.predict_proba(X_test)[:, 1]
metrics = {"f1": f1_score(y_test, proba > 0.5), "roc_auc": roc_auc_score(y_test, proba)}
ConfusionMatrixDisplay.from_predictions(y_test, proba > 0.5)
plt.savefig(out / "confusion_matrix.png")
plt.close("all")
RocCurveDisplay.from_predictions(y_test, proba)
plt.savefig(out / "roc_curve.png")
print(f"bare_s={time.perf_counter() - started:.3f} f1={metrics['f1']:.4f}")
