"""The Lambda functions the workflow's Task states invoke, and the agent handler of each.

The ASL names each function by a definition substitution (``${TrainingFunctionArn}``); CDK fills
them with deployed ARNs and the local engine with ARNs whose invocations it dispatches to the
handlers below. One table serves both, so the graph and its functions cannot drift apart.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

#: substitution prefix -> (Lambda function name, "module:handler") of the agent.
FUNCTIONS: dict[str, tuple[str, str]] = {
    "DataPreparation": ("mlops-data-preparation", "agents.data_preparation:handler"),
    "Training": ("mlops-training", "agents.training:handler"),
    "Evaluation": ("mlops-evaluation", "agents.evaluation:handler"),
    "Judge": ("mlops-judge", "agents.judge:handler"),
    "Packaging": ("mlops-packaging", "agents.packaging:handler"),
    "Deployment": ("mlops-deployment", "agents.deployment:handler"),
    "HistoryWriter": ("mlops-history-writer", "agents.history_writer:handler"),
    "Notification": ("mlops-notification", "agents.notification:handler"),
    "Operator": ("mlops-operator", "agents.retrain:handler"),
    "Monitor": ("mlops-monitor", "agents.monitor:handler"),
    "Retrain": ("mlops-retrain", "agents.retrain:start_handler"),
}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def function_arn(function_name: str, region: str = REGION, account_id: str = ACCOUNT_ID) -> str:
    """Return the Lambda ARN of ``function_name`` in the given region and account."""
    return f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"


def local_substitutions() -> dict[str, str]:
    """Return the definition substitutions the local engine uses: ``{Prefix}FunctionArn`` -> ARN."""
    return {f"{prefix}FunctionArn": function_arn(name) for prefix, (name, _) in FUNCTIONS.items()}


def load_handlers() -> dict[str, Handler]:
    """Import every agent and return Lambda function name -> handler callable.

    Raises:
        ImportError: an agent module or its handler is missing.
    """
    handlers: dict[str, Handler] = {}
    for name, target in FUNCTIONS.values():
        module_name, attribute = target.split(":")
        handlers[name] = getattr(importlib.import_module(module_name), attribute)
    return handlers
