"""The evaluation, decision and outcome sections of a history record, and text helpers. Pure.

``history_markdown.render_record`` assembles these with the run's title, summary, plots and
spec: metrics per split with the train/test gap, the judge (verdict, attempts, reasons and
suggestions with their figures and patches), the operator's decision, SHAP feature importance,
the fairness report, the drift baseline, the failure and the timings. Each returns ``""`` when
it has nothing to show.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from mcp_server.core.models import EvaluationReport, HistoryRecord
from mcp_server.core.rendering.markdown_text import yaml_scalar

NONE = "—"
#: The plot the SHAP section embeds (``EvaluationReport.plots`` name).
SHAP_PLOT = "shap_summary"


def splits_section(record: HistoryRecord) -> str:
    """Metrics on train, validation and test with the gap (train minus test)."""
    report = record.evaluation
    if report is None or not (report.train_metrics or report.validation_metrics):
        return ""
    names = list(dict.fromkeys([*record.thresholds, *report.metrics, *report.train_metrics]))
    rows = [_split_row(name, report) for name in names]
    held_out = "Greedy evaluation" if record.spec.get("task") == "control" else "Test"
    header = f"| Metric | Train | Validation | {held_out} | Gap (train − {held_out.lower()}) |"
    header += "\n|---|---|---|---|---|"
    return "## Metrics by split\n\n" + header + "\n" + "\n".join(rows)


def _split_row(name: str, report: EvaluationReport) -> str:
    train, test = report.train_metrics.get(name), report.metrics.get(name)
    gap = report.gaps.get(name)
    # without reported gaps, the difference; with them, only the metrics the evaluation compares
    # (a count such as calinski_harabasz grows with the rows, so its gap would mean nothing)
    if gap is None and not report.gaps and train is not None and test is not None:
        gap = train - test
    cells = [train, report.validation_metrics.get(name), test, gap]
    return f"| {name} | " + " | ".join(_maybe(v) for v in cells) + " |"


def _maybe(value: float | None) -> str:
    return num(value) if value is not None else NONE


def outputs_section(record: HistoryRecord) -> str:
    """What the evaluation says beyond metrics: notes, cluster sizes and family figures."""
    report = record.evaluation
    if report is None or not (report.notes or report.cluster_sizes or report.details):
        return ""
    parts = ["## Model outputs"]
    if report.notes:
        parts.append("\n".join(f"- {inline(note)}" for note in report.notes))
    if report.cluster_sizes:
        total = sum(report.cluster_sizes.values()) or 1
        rows = [
            f"| {'noise' if label == '-1' else cell(label)} | {count} | {count / total:.1%} |"
            for label, count in sorted(report.cluster_sizes.items(), key=lambda kv: _label_order(kv[0]))
        ]
        parts.append("| Cluster | Training rows | Share |\n|---|---|---|\n" + "\n".join(rows))
    if report.details:
        rows = [f"| {cell(name)} | {cell(_detail(value))} |" for name, value in report.details.items()]
        parts.append("| Figure | Value |\n|---|---|\n" + "\n".join(rows))
    return "\n\n".join(parts)


def _label_order(label: str) -> tuple[int, str]:
    try:
        return (0, f"{int(label):012d}") if int(label) >= 0 else (1, label)
    except ValueError:
        return (0, label)


def _detail(value: Any, shown: int = 10) -> str:
    """A figure for a table cell: numbers formatted, long lists cut to their first ``shown``."""
    if isinstance(value, bool) or not isinstance(value, int | float | list | tuple):
        return str(value)
    if isinstance(value, int | float):
        return num(float(value)) if isinstance(value, float) else str(value)
    items = [_detail(v) for v in value[:shown]]
    more = f", … ({len(value)} in all)" if len(value) > shown else ""
    return "[" + ", ".join(items) + more + "]"


def judge_section(record: HistoryRecord) -> str:
    """The verdict, the attempt and attempts left, the reasons and the suggestions."""
    verdict = record.verdict
    if not verdict:
        return ""
    reasons = verdict.get("reasons") or []
    if isinstance(reasons, str):
        reasons = [reasons]
    listed = "\n".join(f"- {inline(str(r))}" for r in reasons) or f"- {NONE}"
    parts = [f"## Judge\n\nVerdict: **{verdict.get('verdict', NONE)}**"]
    if verdict.get("max_attempts"):
        left = verdict.get("attempts_left", 0)
        attempt = verdict.get("attempt", record.attempt)
        parts.append(f"Attempt {attempt} of {verdict['max_attempts']} ({left} left)")
    parts.append(listed)
    suggestions = [_suggestion(s) for s in verdict.get("suggestions") or []]
    if suggestions:
        parts.append("### Suggestions\n\n" + "\n\n".join(suggestions))
    return "\n\n".join(parts)


def _suggestion(suggestion: dict[str, Any]) -> str:
    kind = inline(str(suggestion.get("kind", "suggestion")))
    text = f"- **{kind}**: {inline(str(suggestion.get('message')))}"
    text += f"\n  - Figure: {inline(str(suggestion.get('figure', NONE)))}"
    patch = suggestion.get("patch") or {}
    if patch:
        changes = ", ".join(f"`{name}: {yaml_scalar(value)}`" for name, value in patch.items())
        text += f"\n  - Patch (hyperparameters): {changes}"
    return text


def operator_section(record: HistoryRecord) -> str:
    """Who decided what and when on this attempt, with the spec patch and its diff."""
    operator = record.operator
    if not operator:
        return ""
    by = f"@{operator['by']}" if operator.get("by") else NONE
    rows = [
        ("Action", str(operator.get("action") or NONE)),
        ("By", by),
        ("At", str(operator.get("at") or NONE)),
    ]
    body = "\n".join(f"| {name} | {cell(value)} |" for name, value in rows)
    parts = [f"## Operator decision\n\n| Field | Value |\n|---|---|\n{body}"]
    if operator.get("patch"):
        text = yaml.safe_dump(operator["patch"], sort_keys=False, allow_unicode=True).rstrip("\n")
        parts.append(f"Patch:\n\n{fence(text)}yaml\n{text}\n{fence(text)}")
    if operator.get("diff"):
        diff = str(operator["diff"])
        parts.append(f"Spec diff:\n\n{fence(diff)}diff\n{diff}\n{fence(diff)}")
    return "\n\n".join(parts)


def shap_section(record: HistoryRecord, plot_links: dict[str, str]) -> str:
    """SHAP: explainer, rows explained, the top features by mean |SHAP| and the summary plot."""
    shap = record.evaluation.shap if record.evaluation else None
    if shap is None:
        return ""
    background = f", background {shap.background_size} rows" if shap.background_size else ""
    lines = [
        "## Explanations (SHAP)",
        "",
        f"Explainer `{shap.explainer}` on {shap.sample_size} rows{background} ({shap.duration_s:.1f} s).",
        "",
        "| Rank | Feature | Mean \\|SHAP\\| |",
        "|---|---|---|",
    ]
    lines += [
        f"| {rank} | {cell(f.feature)} | {num(f.mean_abs_shap)} |"
        for rank, f in enumerate(shap.top_features, start=1)
    ]
    link = next((link for name, link in plot_links.items() if plot_stem(name) == SHAP_PLOT), None)
    if link:
        lines += ["", f"![shap summary]({link.replace(' ', '%20')})"]
    return "\n".join(lines)


def fairness_section(record: HistoryRecord) -> str:
    """The fairness report: per-group metrics, difference, ratio, limit and result."""
    fairness = record.evaluation.fairness if record.evaluation else None
    if fairness is None:
        return ""
    metrics = list(dict.fromkeys(m for values in fairness.by_group.values() for m in values))
    header = "| Group | " + " | ".join(metrics) + " |\n|---|" + "---|" * len(metrics)
    rows = [
        f"| {cell(group)} | " + " | ".join(_maybe(values.get(m)) for m in metrics) + " |"
        for group, values in fairness.by_group.items()
    ]
    result = "pass" if fairness.passed else "fail"
    summary = (
        f"Sensitive feature `{fairness.sensitive_feature}`, metric `{fairness.metric}`: difference "
        f"{num(fairness.difference)} (limit ≤ {num(fairness.max_difference)}), ratio "
        f"{num(fairness.ratio)}: **{result}**"
    )
    return f"## Fairness\n\n{summary}\n\n{header}\n" + "\n".join(rows)


#: The drift baseline's file name beside a record (``assets/{record stem}/baseline.json``).
BASELINE_FILE = "baseline.json"


def baseline_section(record: HistoryRecord, link: str | None = None) -> str:
    """A link to the drift baseline (per-feature statistics and histograms of the training data).

    Args:
        record: the run's record; its ``evaluation.baseline_uri`` says whether there is one.
        link: the committed copy's path relative to the record (``assets/.../baseline.json``).
            Without it the URI is shown as text, never as a link: an absolute ``file://`` link
            is broken everywhere but on the machine that wrote it.
    """
    uri = record.evaluation.baseline_uri if record.evaluation else None
    if not uri:
        return ""
    where = f"[{BASELINE_FILE}]({link.replace(' ', '%20')})" if link else f"`{cell(uri)}`"
    return (
        "## Drift baseline\n\nPer-feature statistics and histograms of the training data, the "
        f"reference for drift monitoring: {where}"
    )


def failure_section(record: HistoryRecord) -> str:
    """The error and its cause (JSON pretty-printed) of a failed run."""
    if record.status != "failed" and not record.error:
        return ""
    error = record.error or {}
    cause = error.get("Cause", "")
    language, text = "text", cause
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        language, text = "json", json.dumps(parsed, indent=2, ensure_ascii=False)
    marks = fence(text)
    return (
        f"## Failure\n\nError: `{inline(error.get('Error', 'unknown'))}`\n\n"
        f"Cause:\n\n{marks}{language}\n{text}\n{marks}"
    )


def tuning_section(record: HistoryRecord) -> str:
    """The hyperparameter tuning job: strategy, objective, every trial, the best one, the failures."""
    tuning = record.training.tuning if record.training else None
    if tuning is None:
        return ""
    done = sum(t.status == "Completed" for t in tuning.trials)
    failed = sum(t.status in ("Failed", "Stopped") for t in tuning.trials)
    took = f", {tuning.duration_s:.1f} s" if tuning.duration_s is not None else ""
    lines = [
        "## Hyperparameter tuning",
        "",
        f"Tuning job `{tuning.name}` ({tuning.status}{took}): {tuning.strategy} search, objective "
        f"`{tuning.objective_metric}` ({tuning.direction}), {len(tuning.trials)} of {tuning.max_trials} "
        f"trials run, {tuning.parallel_trials} at a time: {done} completed, {failed} failed.",
    ]
    best = tuning.best()
    if best is not None and best.objective is not None:
        figure = f"{tuning.objective_metric} {num(best.objective)}"
        lines += ["", f"Best: trial {best.number} (`{best.job_name}`), {figure}."]
    lines += [
        "",
        f"| Trial | Hyperparameters | {cell(tuning.objective_metric)} | Status | Seconds |",
        "|---|---|---|---|---|",
    ]
    for trial in tuning.trials:
        values = ", ".join(f"`{name}: {_hyperparameter(v)}`" for name, v in trial.hyperparameters.items())
        mark = trial.number == tuning.best_trial
        number = f"**{trial.number} (best)**" if mark else str(trial.number)
        objective = _maybe(trial.objective)
        seconds = f"{trial.duration_s:.1f}" if trial.duration_s is not None else NONE
        lines.append(
            f"| {number} | {cell(values) or NONE} | {f'**{objective}**' if mark else objective} | "
            f"{trial.status} | {seconds} |"
        )
    failures = [t for t in tuning.trials if t.status != "Completed" and t.failure_reason]
    if failures:
        lines += ["", "### Failed trials", ""]
        lines += [f"- Trial {t.number} (`{t.job_name}`): {_first_line(t.failure_reason)}" for t in failures]
    return "\n".join(lines)


def _hyperparameter(value: Any) -> str:
    return num(value) if isinstance(value, float) else yaml_scalar(value)


def _first_line(text: str | None, limit: int = 300) -> str:
    line = next((part.strip() for part in (text or "").splitlines() if part.strip()), NONE)
    return inline(line if len(line) <= limit else line[: limit - 1] + "…")


def timings_section(record: HistoryRecord) -> str:
    """The jobs' own run times and the run's wall time, in seconds.

    ``run`` (from the run's start to this record) is the total row. Records without it (older
    ones, keyed by state) total their state rows; job rows (``training job``, ``evaluation
    job``, ``hyperparameter tuning job``) then overlap the states that waited for them, so they
    are shown after that total and not added to it.
    """
    if not record.timings:
        return ""
    timings = dict(record.timings)
    header = "## Timings\n\n| | Seconds |\n|---|---|\n"
    if "run" in timings:
        run = timings.pop("run")
        rows = "".join(f"| {cell(name)} | {seconds:.1f} |\n" for name, seconds in timings.items())
        return f"{header}{rows}| **Run, from its start to this record** | **{run:.1f}** |"
    states = {name: s for name, s in timings.items() if not name.endswith(" job")}
    jobs = {name: s for name, s in timings.items() if name.endswith(" job")}
    rows = "".join(f"| {cell(state)} | {seconds:.1f} |\n" for state, seconds in states.items())
    total = f"| **Total** | **{sum(states.values()):.1f}** |"
    within = "".join(f"\n| {cell(name)} (within the states above) | {s:.1f} |" for name, s in jobs.items())
    return f"{header}{rows}{total}{within}"


def plot_stem(name: str) -> str:
    """``assets/x/shap_summary.png`` -> ``shap_summary``."""
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def num(value: float) -> str:
    """Format a number with six significant digits."""
    return format(value, ".6g")


def inline(text: str) -> str:
    """Collapse line breaks so ``text`` stays on one Markdown line."""
    return " ".join(text.split())


def cell(text: str) -> str:
    """Make ``text`` safe inside a table cell (one line, escaped pipes)."""
    return inline(text).replace("|", "\\|")


def fence(text: str) -> str:
    """Return a backtick fence longer than any backtick run inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)
