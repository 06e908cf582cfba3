"""Synthesise the CDK app as ``make synth`` does and print one JSON object.

``{"synth_s", "bundled", "resources", "findings_unacknowledged", "acknowledged", "bundles_mb",
"bundle_limit_mb"}``: seconds to synthesise both stacks (the Lambda bundle built with pip, unless
``--no-bundle``), each stack's resource count, cdk-nag's unacknowledged findings (synth fails
when there is one, so 0 here) and the acknowledged ones (rule -> {findings, reasons}), and each
Lambda code asset's unzipped size in MB against Lambda's 250 MB limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from cdk.app import build_app  # noqa: E402

LAMBDA_LIMIT_MB = 250


def folder_mb(folder: Path) -> float:
    """Total size of the files under ``folder``, in MB (10^6 bytes)."""
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outdir", default=str(ROOT / "cdk.out"))
    parser.add_argument("--no-bundle", action="store_true", help="skip building the Lambda bundle")
    args = parser.parse_args()
    context = {"aws:cdk:bundling-stacks": []} if args.no_bundle else {}
    started = time.perf_counter()
    build_app(context, outdir=args.outdir).synth()
    synth_s = time.perf_counter() - started
    outdir = Path(args.outdir)
    report = json.loads((outdir / "validation-report.json").read_text())
    acknowledged: dict[str, dict[str, object]] = defaultdict(lambda: {"findings": 0, "reasons": []})
    unacknowledged = 0
    for plugin in report["pluginReports"]:
        unacknowledged += len(plugin.get("violations", []))
        for item in plugin.get("suppressedViolations", []):
            entry = acknowledged[f"{plugin['pluginName']}: {item['ruleName'].split('[')[0]}"]
            entry["findings"] = int(entry["findings"]) + len(item["violatingConstructs"])  # type: ignore[call-overload]
            reasons = entry["reasons"]
            if item["reason"] not in reasons:  # type: ignore[operator]
                reasons.append(item["reason"])  # type: ignore[attr-defined]
    resources = {
        path.name.removesuffix(".template.json"): len(json.loads(path.read_text())["Resources"])
        for path in sorted(outdir.glob("*.template.json"))
    }
    bundles = {path.name[:18]: folder_mb(path) for path in sorted(outdir.glob("asset.*")) if path.is_dir()}
    print(
        json.dumps(
            {
                "synth_s": round(synth_s, 2),
                "bundled": not args.no_bundle,
                "resources": resources,
                "findings_unacknowledged": unacknowledged,
                "acknowledged": dict(sorted(acknowledged.items())),
                "bundles_mb": bundles,
                "bundle_limit_mb": LAMBDA_LIMIT_MB,
            }
        )
    )


if __name__ == "__main__":
    main()
