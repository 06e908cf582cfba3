"""Endpoints, production variants and deployments: the records the endpoint backends exchange.

An endpoint is described declaratively: ``DesiredEndpoint`` says which production variants it
must serve and at what weights; a backend makes it so (a local server process, or a SageMaker
endpoint config) and answers with ``EndpointDescription``. Pure.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_server.core.deployment.metrics import VariantMetrics

#: SageMaker's pattern for endpoint and variant names.
NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"

EndpointStatus = Literal["Creating", "Updating", "InService", "Failed", "Stopped", "Deleting"]
DeploymentAction = Literal[
    "create", "deploy", "shift", "check", "promote", "rollback", "hold", "compare", "delete"
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServingModel(_Record):
    """A registered model version as an endpoint serves it.

    Attributes:
        model_name: the registered model (model package group).
        version: the registry version (MLflow number, or the model package ARN on AWS).
        semantic_version: MAJOR.MINOR.PATCH.
        model_uri: the training job's model (folder or ``model.tar.gz``): what evaluation reads.
        model_data: what the server loads: the registered version's folder locally, the
            ``model.tar.gz`` on S3 for SageMaker; empty, the backend finds it from the registry.
        class_labels: each class code's label, or None.
        algorithm: the algorithm it was trained with (it chooses the inference image's pins).
    """

    model_name: str
    version: str
    semantic_version: str = ""
    model_uri: str
    model_data: str = ""
    class_labels: list[str] | None = None
    algorithm: str = ""


class VariantState(_Record):
    """One production variant of an endpoint.

    Attributes:
        name: the variant's name (``v`` and the registry version number).
        model: the model it serves.
        weight: its share of traffic, percent (0 answers only requests that name it).
        instance_type, instance_count: its SageMaker instances (ignored locally).
    """

    name: str = Field(pattern=NAME_PATTERN)
    model: ServingModel
    weight: float = Field(ge=0, le=100)
    instance_type: str = "ml.m5.large"
    instance_count: int = Field(1, ge=1)


class AutoScaling(_Record):
    """Target tracking on ``SageMakerVariantInvocationsPerInstance`` (Application Auto Scaling)."""

    min_instances: int = 1
    max_instances: int = 4
    target_invocations_per_instance: int = 100


class Serverless(_Record):
    """``ServerlessConfig``: memory in MB and the maximum concurrent invocations."""

    memory_mb: int = 2048
    max_concurrency: int = 5


class DesiredEndpoint(_Record):
    """What an endpoint must serve after a deployment step.

    Attributes:
        endpoint_name: the endpoint.
        variants: its production variants; weights are percentages summing to 100.
        data_capture_percent: the share of requests captured, percent (0: off).
        blue_green: switch fleets with SageMaker's blue/green update (the old fleet kept for
            ``bake_s`` seconds, rolled back on the alarms) instead of in place.
        bake_s: the blue/green bake, seconds.
        auto_scaling, serverless: SageMaker capacity.
        error_rate, p95_latency_ms: the alarm limits (``rollback_on``) the endpoint's alarms use.
        action, by, detail: what the deployment history records for this change.
    """

    endpoint_name: str = Field(pattern=NAME_PATTERN)
    variants: list[VariantState] = Field(min_length=1, max_length=10)
    data_capture_percent: float = Field(100, ge=0, le=100)
    blue_green: bool = False
    bake_s: int = Field(0, ge=0, le=3600)
    auto_scaling: AutoScaling | None = None
    serverless: Serverless | None = None
    error_rate: float = Field(0.01, ge=0, le=1)
    p95_latency_ms: float = Field(100, gt=0)
    action: DeploymentAction = "deploy"
    by: str = ""
    detail: str = Field("", max_length=2000)


class DeploymentEvent(_Record):
    """One line of an endpoint's deployment history.

    Attributes:
        at: when (ISO-8601 UTC).
        action: create, deploy, shift, check, promote, rollback, hold, compare or delete.
        weights: variant -> percent of traffic after the action.
        versions: variant -> the model version it serves.
        by: who (an issue's login, ``workflow`` or ``cli``).
        detail: why, and what decided it.
        metrics: variant -> the metrics that decided it, when any.
    """

    at: str
    action: DeploymentAction
    weights: dict[str, float] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    by: str = ""
    detail: str = ""
    metrics: dict[str, VariantMetrics] = Field(default_factory=dict)


class EndpointDescription(_Record):
    """An endpoint as it is now.

    Attributes:
        name: the endpoint.
        target: ``local`` or ``sagemaker_endpoint``.
        status: SageMaker's endpoint status (a local endpoint whose process died is ``Failed``,
            one stopped by the user ``Stopped``).
        url: where to send requests (``http://127.0.0.1:PORT`` locally, the runtime's
            ``/endpoints/NAME/invocations`` on SageMaker).
        model_name: the registered model it serves.
        variants: its production variants.
        failure_reason: why it is Failed, if it is.
        history: its latest deployment events, oldest first.
        data_capture_percent: the share of requests captured, percent.
        served_models: every model version it has served, the most recent last (what
            ``/rollback`` can return to).
    """

    name: str
    target: Literal["local", "sagemaker_endpoint"]
    status: EndpointStatus
    url: str = ""
    model_name: str
    variants: list[VariantState]
    failure_reason: str = ""
    history: list[DeploymentEvent] = Field(default_factory=list)
    served_models: list[ServingModel] = Field(default_factory=list)
    data_capture_percent: float = 0.0

    def variant(self, name: str) -> VariantState | None:
        """The variant named ``name``, or None."""
        return next((v for v in self.variants if v.name == name), None)

    @property
    def champion(self) -> VariantState | None:
        """The variant with the largest weight (the one serving 100% after a promotion)."""
        return max(self.variants, key=lambda v: v.weight) if self.variants else None


class EndpointMetrics(_Record):
    """Per-variant metrics of an endpoint over a window ending at ``at`` (seconds since the epoch)."""

    endpoint_name: str
    at: float
    window_s: float | None = None
    variants: dict[str, VariantMetrics] = Field(default_factory=dict)


class InvocationResult(_Record):
    """An endpoint's answer to one request: HTTP status, body, content type, the variant that answered."""

    status: int
    body: str
    content_type: str = "application/json"
    variant: str = ""


class ReplaySummary(_Record):
    """Validation traffic sent to an endpoint: requests sent and answers by status class (``2xx``...)."""

    sent: int
    statuses: dict[str, int] = Field(default_factory=dict)


class PackageRequest(_Record):
    """Package one registered version: its inference image's Dockerfile and its OpenAPI document."""

    model: ServingModel
    metadata: dict[str, Any] | None = Field(
        None, description="the model folder's metadata.json (read from model_data when None)"
    )


class ModelPackageFiles(_Record):
    """Where a version's packaging was written (beside the model version).

    Attributes:
        dockerfile_uri, openapi_uri, requirements_uri: the files.
        image_uri: the inference image an endpoint runs (the stack's ECR repository on AWS).
        requirements: the pinned packages the image installs.
    """

    dockerfile_uri: str
    openapi_uri: str
    requirements_uri: str
    image_uri: str = ""
    requirements: list[str] = Field(default_factory=list)


def variant_name(version: str) -> str:
    """The production variant's name for a registry version: ``v`` and its last number.

    ``"3"`` (MLflow) and ``"arn:...:model-package/churn/3"`` (SageMaker) both give ``v3``.

    Raises:
        ValueError: the version has no number at its end.
    """
    found = re.search(r"(\d+)$", version)
    if found is None:
        raise ValueError(f"registry version {version!r} does not end with a number")
    return f"v{found.group(1)}"


def served_after(served: list[ServingModel], variants: list[VariantState]) -> list[ServingModel]:
    """``served`` with the variants' models appended (moved last when already there), at most 20."""
    current = [v.model for v in variants]
    keys = {(m.model_name, m.version) for m in current}
    return [m for m in served if (m.model_name, m.version) not in keys][-(20 - len(current)) :] + current


def rollback_variants(endpoint: EndpointDescription, version: str | None = None) -> tuple[VariantState, str]:
    """The single variant a rollback leaves serving, and a sentence saying what it returns to.

    Without ``version``: during a traffic shift (two variants) the champion, the variant that
    served before the newest model was added; after a promotion, the model served before the
    current one. With ``version`` (a registry version, semantic version or variant name): that
    model, if the endpoint ever served it.

    Raises:
        ValueError: nothing to return to, or the endpoint never served ``version``.
    """
    served = endpoint.served_models
    current = endpoint.champion
    if current is None:
        raise ValueError(f"endpoint {endpoint.name} serves nothing")
    if version is not None:
        wanted = version.removeprefix("v") if version.startswith("v") and version[1:].isdigit() else None
        for model in reversed(served):
            number = re.search(r"(\d+)$", model.version)
            if version in (model.version, model.semantic_version) or (
                wanted is not None and number is not None and number.group(1) == wanted
            ):
                target = model
                break
        else:
            known = ", ".join(m.semantic_version or m.version for m in served) or "none"
            raise ValueError(f"endpoint {endpoint.name} never served version {version} (it served {known})")
    elif len(endpoint.variants) > 1:
        newest = served[-1] if served else None
        target = next(
            v.model for v in endpoint.variants if newest is None or v.model.version != newest.version
        )
    else:
        earlier = [m for m in served if m.version != current.model.version]
        if not earlier:
            only = current.model.semantic_version or current.model.version
            raise ValueError(
                f"endpoint {endpoint.name} has served only {only}; there is nothing to roll back to"
            )
        target = earlier[-1]
    variant = VariantState(
        name=variant_name(target.version),
        model=target,
        weight=100,
        instance_type=current.instance_type,
        instance_count=current.instance_count,
    )
    return variant, f"back to {target.semantic_version or target.version}"


def event_for(
    action: DeploymentAction, variants: list[VariantState], at: str, by: str = "", detail: str = ""
) -> DeploymentEvent:
    """The history event of a change that leaves the endpoint with ``variants`` (at ``at``, ISO-8601)."""
    return DeploymentEvent(
        at=at,
        action=action,
        weights={v.name: v.weight for v in variants},
        versions={v.name: v.model.semantic_version or v.model.version for v in variants},
        by=by,
        detail=detail,
    )
