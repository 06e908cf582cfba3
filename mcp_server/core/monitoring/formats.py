"""SageMaker Model Monitor's file formats, from our baseline descriptions and drift results. Pure.

Model Monitor closes to new customers on 2026-07-30; we run our own monitoring job but keep its
files, so tools that read them keep working. Source: the SageMaker Developer Guide, "Schema for
Statistics (statistics.json file)", "Schema for Constraints (constraints.json file)" and
"Schema for Violations (constraint_violations.json file)".

- ``statistics``: per feature ``numerical_statistics`` (``common.num_present/num_missing``,
  mean, sum, std_dev, min, max, ``distribution.kll.buckets``) or ``string_statistics``
  (``distinct_count``, ``distribution.categorical.buckets``). The buckets are our histogram's
  bins with their counts; there is no KLL ``sketch`` (we do not compute one).
- ``constraints``: per feature its ``inferred_type``, ``completeness``, and for categories the
  ``string_constraints.domains``; ``monitoring_config.distribution_constraints`` holds the
  PSI threshold as ``comparison_threshold`` (our comparison is PSI, named by
  ``comparison_method: "PSI"``; Model Monitor's own methods are ``Simple`` and ``Robust``).
- ``violations``: ``baseline_drift_check``, ``completeness_check``, ``missing_column_check``
  and ``categorical_values_check`` entries.

A description is what ``training_containers.evaluation.baseline.build_baseline`` returns for a
frame: the training split (the baseline) or the captured rows (the current window).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mcp_server.core.monitoring.drift import UNSEEN, FeatureDrift

#: The ``version`` Model Monitor writes in each file.
FORMAT_VERSION = 0.0
#: Completeness below the baseline's minus this is a completeness violation (a fraction).
COMPLETENESS_TOLERANCE = 0.05


def statistics(description: Mapping[str, Any]) -> dict[str, Any]:
    """``statistics.json`` of a description (see the module).

    Args:
        description: ``{"n_rows", "feature_names", "features": {name: stats}}``.
    """
    features = []
    for name in description.get("feature_names", []):
        stats = description["features"][name]
        present = int(stats.get("count", 0))
        missing = int(round(stats.get("missing_fraction", 0.0) * description.get("n_rows", 0)))
        common = {"num_present": present, "num_missing": missing}
        if stats.get("type") == "numeric":
            histogram = stats.get("histogram") or {}
            edges, fractions = histogram.get("edges") or [], histogram.get("fractions") or []
            buckets = [
                {"lower_bound": edges[i], "upper_bound": edges[i + 1], "count": round(fractions[i] * present)}
                for i in range(len(fractions))
            ]
            mean = stats.get("mean", 0.0)
            features.append(
                {
                    "name": name,
                    "inferred_type": "Fractional",
                    "numerical_statistics": {
                        "common": common,
                        "mean": mean,
                        "sum": mean * present,
                        "std_dev": stats.get("std", 0.0),
                        "min": stats.get("min", 0.0),
                        "max": stats.get("max", 0.0),
                        "distribution": {"kll": {"buckets": buckets}},
                    },
                }
            )
        else:
            frequencies = stats.get("frequencies") or {}
            features.append(
                {
                    "name": name,
                    "inferred_type": "String",
                    "string_statistics": {
                        "common": common,
                        "distinct_count": len(frequencies),
                        "distribution": {
                            "categorical": {
                                "buckets": [
                                    {"value": value, "count": round(share * present)}
                                    for value, share in frequencies.items()
                                ]
                            }
                        },
                    },
                }
            )
    return {
        "version": FORMAT_VERSION,
        "dataset": {"item_count": int(description.get("n_rows", 0))},
        "features": features,
    }


def constraints(baseline: Mapping[str, Any], drift_psi: float) -> dict[str, Any]:
    """``constraints.json`` of the training baseline with the PSI threshold (see the module)."""
    features = []
    for name in baseline.get("feature_names", []):
        stats = baseline["features"][name]
        entry: dict[str, Any] = {
            "name": name,
            "inferred_type": "Fractional" if stats.get("type") == "numeric" else "String",
            "completeness": round(1.0 - float(stats.get("missing_fraction", 0.0)), 6),
        }
        if stats.get("type") == "numeric":
            entry["num_constraints"] = {"is_non_negative": float(stats.get("min", 0.0)) >= 0}
        else:
            entry["string_constraints"] = {"domains": list((stats.get("frequencies") or {}).keys())}
        features.append(entry)
    return {
        "version": FORMAT_VERSION,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": drift_psi,
                "comparison_method": "PSI",
                "categorical_comparison_threshold": drift_psi,
                "categorical_drift_method": "ChiSquared",
            },
        },
    }


def violations(
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    drifts: Iterable[FeatureDrift],
    missing_columns: Iterable[str] = (),
) -> dict[str, Any]:
    """``constraint_violations.json`` of a window (see the module).

    Args:
        baseline: the training baseline's description.
        current: the window's description (same features).
        drifts: the window's per-feature drift.
        missing_columns: baseline features absent from the captured requests.
    """
    found: list[dict[str, str]] = []
    for drift in drifts:
        if drift.drifted:
            test = (
                f"; {drift.test} statistic {drift.statistic:.4g}, p-value {drift.p_value:.3g}"
                if drift.test and drift.statistic is not None and drift.p_value is not None
                else ""
            )
            found.append(
                {
                    "feature_name": drift.feature,
                    "constraint_check_type": "baseline_drift_check",
                    "description": (
                        f"PSI {drift.psi:.4f} against the training baseline exceeds {drift.threshold:g}{test}"
                    ),
                }
            )
        unseen = drift.current_shares.get(UNSEEN, 0.0)
        if drift.kind == "categorical" and unseen > 0:
            found.append(
                {
                    "feature_name": drift.feature,
                    "constraint_check_type": "categorical_values_check",
                    "description": f"{unseen:.2%} of the values are categories the baseline never saw",
                }
            )
    for name in baseline.get("feature_names", []):
        before = 1.0 - float(baseline["features"][name].get("missing_fraction", 0.0))
        stats = (current.get("features") or {}).get(name)
        if stats is None:
            continue
        now = 1.0 - float(stats.get("missing_fraction", 0.0))
        if now < before - COMPLETENESS_TOLERANCE:
            found.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "completeness_check",
                    "description": f"completeness {now:.2%} is below the baseline's {before:.2%}",
                }
            )
    for name in missing_columns:
        found.append(
            {
                "feature_name": name,
                "constraint_check_type": "missing_column_check",
                "description": "the captured requests do not carry this feature",
            }
        )
    return {"violations": found}
