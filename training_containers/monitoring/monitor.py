"""The monitoring job: data drift, prediction drift and model quality of an endpoint's captured requests.

A program under the SageMaker Processing contract, run as a local processing job or as a
SageMaker processing job (SageMaker Model Monitor closes to new customers on 2026-07-30; this
job keeps its file formats). Under ``/opt/ml/processing`` (``MLOPS_PROCESSING_ROOT``) it reads:

- ``input/capture/``: the endpoint's data capture, ``{variant}/yyyy/mm/dd/hh/*.jsonl``;
- ``input/baseline/baseline.json``: the training baseline (``evaluation/baseline.py``);
- ``input/ground_truth/`` (optional): labels in SageMaker's ground-truth format, one JSON line
  each: ``{"groundTruthData": {"data": LABEL, "encoding": "CSV"}, "eventMetadata": {"eventId":
  INFERENCE_ID}, "eventVersion": "0"}``; a classifier's LABEL is a class label, or its code
  0..K-1 (the baseline's ``class_labels`` order);
- ``input/system/`` (optional, local endpoints): the endpoint's system metrics over time,
  summarised and plotted (``system``);
- ``input/config/monitoring.json``: ``endpoint_name``, ``since`` and ``until`` (ISO-8601 UTC),
  ``drift_psi``, ``metric_floor``, ``task``, ``target``, ``quality_lookback_s``.

It writes to ``output/``: ``statistics.json`` (the window), ``constraints.json`` and
``baseline/statistics.json`` (the training baseline), ``constraint_violations.json``,
``report.json`` (the summary the backends read), ``report.md``, ``plots/*.png`` and, when
ground truth labels captured rows, ``feedback.parquet`` (those rows as training rows: the
features and the target, for ``retraining.feedback``); or ``output/failure`` and exit status 1.

Drift is judged on the rows captured in ``[since, until)``. Model quality is computed on every
captured row up to ``until`` within ``quality_lookback_s`` whose inference id has a label:
labels arrive after the predictions they grade.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcp_server.core.monitoring import formats
from mcp_server.core.monitoring.drift import FeatureDrift, categorical_drift, numeric_drift
from training_containers.common.contract import run_reporting_failures
from training_containers.evaluation.baseline import build_baseline
from training_containers.monitoring import system
from training_containers.monitoring.capture import read_capture

#: Default root of the contract inside a SageMaker processing container.
DEFAULT_ROOT = "/opt/ml/processing"
#: Seconds of capture searched for rows that ground truth labels (7 days).
QUALITY_LOOKBACK_S = 7 * 86_400
#: Drift plots drawn: the features with the largest PSI.
MAX_PLOTS = 6
PREDICTION = "prediction"


def say(message: str) -> None:
    """Write one line of the job's log (stdout)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def main() -> None:
    """Run the job under ``MLOPS_PROCESSING_ROOT`` (see the module); exit 1 with a failure file on error."""
    root = Path(os.environ.get("MLOPS_PROCESSING_ROOT") or DEFAULT_ROOT)
    output = root / "output"

    def write_failure(reason: str) -> None:
        output.mkdir(parents=True, exist_ok=True)
        (output / "failure").write_text(reason)

    run_reporting_failures(lambda: monitor(root), write_failure)


def monitor(root: Path) -> dict[str, Any]:
    """Run the monitoring job under ``root`` and return ``report.json``'s content.

    Raises:
        FileNotFoundError: the configuration or the baseline is missing.
        ValueError: the configuration or the baseline cannot be read.
    """
    started = time.perf_counter()
    config = json.loads((root / "input" / "config" / "monitoring.json").read_text())
    baseline_file = root / "input" / "baseline" / "baseline.json"
    if not baseline_file.is_file():
        raise FileNotFoundError(f"no training baseline at {baseline_file}; the model version has none")
    baseline = json.loads(baseline_file.read_text())
    features: list[str] = list(baseline["feature_names"])
    kinds = {name: baseline["features"][name]["type"] for name in features}
    categorical = {name for name, kind in kinds.items() if kind == "categorical"}
    since, until = config.get("since"), config["until"]
    labels = read_ground_truth(root / "input" / "ground_truth")
    read_since = since
    if labels:
        lookback = _iso(
            _parse(until) - dt.timedelta(seconds=config.get("quality_lookback_s", QUALITY_LOOKBACK_S))
        )
        read_since = min(since, lookback) if since else None
    window = read_capture(root / "input" / "capture", features, categorical, read_since, until, since)
    say(
        f"read {window.records} capture record(s) in {window.files} file(s) from {read_since or 'the start'} "
        f"to {until}: {len(window.frame)} row(s); {window.bad_lines} line(s) skipped"
    )
    for reason in window.reasons:
        say(f"skipped {reason}")
    frame = window.frame
    current = frame[frame["__time__"] >= since] if since else frame
    threshold = float(config.get("drift_psi", 0.2))
    drifts = [
        _feature_drift(name, kinds[name], baseline["features"][name], current[name], threshold)
        for name in features
    ]
    prediction = _prediction_drift(baseline, current, threshold)
    if current.empty:
        say("no captured request in the window: nothing to compare with the baseline")
    quality, labelled, unknown = model_quality(frame, labels, config.get("task", "classification"), baseline)
    if unknown:
        say(
            f"{unknown} ground-truth label(s) match no captured request of the last "
            f"{QUALITY_LOOKBACK_S // 86_400} days"
        )
    output = root / "output"
    output.mkdir(parents=True, exist_ok=True)
    description = (
        build_baseline(current[features], kinds, None, split="capture") if len(current) else _empty(features)
    )
    missing = [d.feature for d in drifts if d.rows == 0 and len(current) and d.missing_fraction == 1.0]
    violations = formats.violations(baseline, description, drifts, missing)
    _write(output / "statistics.json", formats.statistics(description))
    _write(output / "baseline" / "statistics.json", formats.statistics(baseline))
    _write(output / "constraints.json", formats.constraints(baseline, threshold))
    _write(output / "constraint_violations.json", violations)
    plots = _plots(output, [*drifts, *([prediction] if prediction else [])])
    feedback = labelled_rows(frame, labels, features, config.get("target"), baseline)
    if len(feedback):
        feedback.to_parquet(output / "feedback.parquet", index=False)
        say(f"wrote {len(feedback)} labelled captured row(s) to feedback.parquet")
    samples, skipped_samples = system.read_samples(root / "input" / "system", since, until)
    if skipped_samples:
        say(f"skipped {skipped_samples} unreadable system-metrics line(s)")
    plots.update(system.plot(output, samples))
    report = {
        "endpoint_name": config["endpoint_name"],
        "status": "CompletedWithViolations" if violations["violations"] else "Completed",
        "since": since,
        "until": until,
        "records": window.recent,
        "rows": len(current),
        "bad_lines": window.bad_lines,
        "features": [d.model_dump(mode="json") for d in drifts],
        "prediction": prediction.model_dump(mode="json") if prediction else None,
        "drifted_features": [d.feature for d in drifts if d.drifted],
        "quality": quality,
        "labelled_rows": labelled,
        "unknown_ground_truth": unknown,
        "violations": len(violations["violations"]),
        "plots": plots,
        "system": system.summary(samples),
        "feedback_rows": len(feedback),
        "duration_s": round(time.perf_counter() - started, 3),
    }
    (output / "report.md").write_text(markdown_report(report, config.get("metric_floor") or {}))
    _write(output / "report.json", report)
    say(
        f"{report['status']}: {len(report['drifted_features'])} drifted feature(s) of {len(features)}, "
        f"{report['violations']} violation(s), {labelled} labelled row(s)"
    )
    return report


def read_ground_truth(folder: Path) -> dict[str, str]:
    """Inference id -> label of every ground-truth line under ``folder`` (a later line wins).

    Unreadable lines are skipped and counted in the log.
    """
    labels: dict[str, str] = {}
    bad = 0
    if not folder.is_dir():
        return labels
    for path in sorted(folder.rglob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    labels[str(record["eventMetadata"]["eventId"])] = str(
                        record["groundTruthData"]["data"]
                    ).strip()
                except (ValueError, KeyError, TypeError):
                    bad += 1
    if bad:
        say(f"skipped {bad} unreadable ground-truth line(s)")
    return labels


def model_quality(
    frame: pd.DataFrame, labels: dict[str, str], task: str, baseline: dict[str, Any]
) -> tuple[dict[str, float], int, int]:
    """The task's metrics on the captured rows that have a label.

    Returns:
        ``(metric -> value, labelled rows, labels matching no captured row)``. Classification
        gives accuracy, precision, recall and f1 (probabilities are not captured per class, so
        no roc_auc or log_loss); regression rmse, mae, r2 and mape.
    """
    if not labels or frame.empty:
        return {}, 0, len(labels)
    from training_containers.common.metrics import classification_metrics, regression_metrics

    rows, truth = _matched_labels(frame, labels, baseline)
    unknown = len(set(labels) - set(rows["__inference_id__"].astype(str)))
    if rows.empty:
        return {}, 0, unknown
    if task == "regression":
        y_true = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float)
        y_pred = pd.to_numeric(rows["__prediction__"], errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(y_true) & np.isfinite(y_pred)
        if not keep.any():
            return {}, 0, unknown
        return regression_metrics(y_true[keep], y_pred[keep]), int(keep.sum()), unknown
    predicted = rows["__prediction__"].astype(str)
    ordered = [str(label) for label in baseline.get("class_labels") or []]
    known = ordered or list((baseline.get("target_distribution") or {}).get("frequencies", {}))
    classes = sorted(set(known) | set(truth) | set(predicted), key=_class_order)
    codes = {label: i for i, label in enumerate(classes)}
    y_true = truth.map(codes).to_numpy(dtype=int)
    y_pred = predicted.map(codes).to_numpy(dtype=int)
    return classification_metrics(y_true, y_pred, None, max(len(classes), 2)), len(rows), unknown


def labelled_rows(
    frame: pd.DataFrame,
    labels: dict[str, str],
    features: list[str],
    target: str | None,
    baseline: dict[str, Any],
) -> pd.DataFrame:
    """The captured rows that have a label, as training rows: the features and ``target``.

    Labels are read as ``model_quality`` reads them (``_matched_labels``) and stay text: the
    preparation casts them to the training target's type. Empty without a target or labels.
    """
    if not labels or not target or frame.empty:
        return pd.DataFrame()
    rows, truth = _matched_labels(frame, labels, baseline)
    found = rows[features].copy()
    found[target] = truth.to_numpy()
    return found.reset_index(drop=True)


def _matched_labels(
    frame: pd.DataFrame, labels: dict[str, str], baseline: dict[str, Any]
) -> tuple[pd.DataFrame, pd.Series]:
    """The captured rows whose inference id has a label, and those labels (text).

    A classifier's label given as its class code 0..K-1 becomes the class label (the
    baseline's ``class_labels`` order).
    """
    rows = frame[frame["__inference_id__"].astype(str).isin(labels.keys())]
    truth = rows["__inference_id__"].astype(str).map(labels)
    ordered = [str(label) for label in baseline.get("class_labels") or []]
    if ordered:
        truth = truth.map(
            lambda v: ordered[int(v)] if v not in ordered and v.isdigit() and int(v) < len(ordered) else v
        )
    return rows, truth


def _class_order(label: str) -> tuple[int, float, str]:
    """Numeric labels in numeric order (as the training's class codes), then the others."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _feature_drift(
    name: str, kind: str, stats: dict[str, Any], values: pd.Series, threshold: float
) -> FeatureDrift:
    if kind == "numeric":
        return numeric_drift(
            name, stats, pd.to_numeric(values, errors="coerce").to_numpy(dtype=float), threshold
        )
    return categorical_drift(name, stats, values.tolist(), threshold)


def _prediction_drift(
    baseline: dict[str, Any], current: pd.DataFrame, threshold: float
) -> FeatureDrift | None:
    """The predictions against the training target's distribution (None without one)."""
    target = baseline.get("target_distribution")
    if not target or current.empty:
        return None
    predictions = current["__prediction__"]
    if target.get("type") == "numeric":
        return numeric_drift(
            PREDICTION, target, pd.to_numeric(predictions, errors="coerce").to_numpy(dtype=float), threshold
        )
    return categorical_drift(PREDICTION, target, predictions.astype(str).tolist(), threshold)


def _empty(features: list[str]) -> dict[str, Any]:
    return {
        "n_rows": 0,
        "feature_names": features,
        "features": {n: {"count": 0, "missing_fraction": 0.0} for n in features},
    }


def _write(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1, allow_nan=False))


def _plots(output: Path, drifts: list[FeatureDrift]) -> dict[str, str]:
    """Baseline against current shares for the most drifted features; name -> path under output."""
    chosen = sorted((d for d in drifts if d.current_shares), key=lambda d: -d.psi)[:MAX_PLOTS]
    if not chosen:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    relative = {}
    for drift in chosen:
        labels = list(drift.baseline_shares)
        positions = np.arange(len(labels))
        figure, axis = plt.subplots(figsize=(7, 3.2))
        axis.bar(positions - 0.2, [drift.baseline_shares[k] for k in labels], 0.4, label="training baseline")
        axis.bar(positions + 0.2, [drift.current_shares.get(k, 0.0) for k in labels], 0.4, label="captured")
        axis.set_xticks(positions, labels, rotation=45, ha="right", fontsize=7)
        axis.set_ylabel("share of rows")
        axis.set_title(f"{drift.feature}: PSI {drift.psi:.3f}" + (" (drifted)" if drift.drifted else ""))
        axis.legend(fontsize=7)
        figure.tight_layout()
        name = f"drift_{_slug(drift.feature)}"
        relative[name] = f"plots/{name}.png"
        (output / "plots").mkdir(exist_ok=True)
        figure.savefig(output / relative[name], dpi=80)
        plt.close(figure)
    return relative


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]


def markdown_report(report: dict[str, Any], floors: dict[str, float]) -> str:
    """The job's report as Markdown: window, counts, the drift table, model quality and plots."""
    lines = [
        f"# Monitoring report: {report['endpoint_name']}",
        "",
        f"- Window: {report['since'] or 'the first capture'} to {report['until']}",
        f"- Captured requests: {report['records']}, rows: {report['rows']}, "
        f"unreadable lines skipped: {report['bad_lines']}",
        f"- Status: {report['status']} ({report['violations']} violation(s))",
        "",
    ]
    if not report["rows"]:
        lines += ["No request was captured in this window: nothing was compared.", ""]
    else:
        lines += [
            "| feature | kind | PSI | test | statistic | p-value | drifted |",
            "|---|---|---|---|---|---|---|",
        ]
        rows = list(report["features"]) + ([report["prediction"]] if report["prediction"] else [])
        for drift in sorted(rows, key=lambda d: -d["psi"]):
            statistic = f"{drift['statistic']:.4f}" if drift.get("statistic") is not None else "—"
            p_value = f"{drift['p_value']:.3g}" if drift.get("p_value") is not None else "—"
            lines.append(
                f"| {drift['feature']} | {drift['kind']} | {drift['psi']:.4f} | {drift.get('test') or '—'} "
                f"| {statistic} | {p_value} | {'**yes**' if drift['drifted'] else 'no'} |"
            )
        lines.append("")
    if report["quality"]:
        lines += [
            f"## Model quality on {report['labelled_rows']} labelled rows",
            "",
            "| metric | value | floor |",
            "|---|---|---|",
        ]
        for metric, value in report["quality"].items():
            floor = floors.get(metric)
            lines.append(f"| {metric} | {value:.4f} | {'' if floor is None else f'{floor:g}'} |")
        lines.append("")
    if report["unknown_ground_truth"]:
        lines += [f"{report['unknown_ground_truth']} ground-truth label(s) matched no captured request.", ""]
    lines += system.markdown(report.get("system") or {})
    for name, path in report["plots"].items():
        lines.append(f"![{name}]({path})")
    return "\n".join(lines).rstrip() + "\n"


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    main()
    sys.exit(0)
