"""Endpoint tools: packaging, deployment, traffic shifts, metrics, invocations, rollback, deletion.

package_model, deploy_model, shift_traffic, describe_endpoint, list_endpoints,
get_endpoint_metrics, invoke_endpoint, replay_validation_traffic, rollback_endpoint,
record_endpoint_event and delete_endpoint.

The tools that change or remove an endpoint carry ``destructive_hint`` and, like every tool that
writes, need a server started with ``--allow-write``; the read-only ones do not.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.deployment.models import (
    DeploymentEvent,
    DesiredEndpoint,
    EndpointDescription,
    EndpointMetrics,
    InvocationResult,
    ModelPackageFiles,
    PackageRequest,
    ReplaySummary,
    rollback_variants,
)
from mcp_server.errors import InvalidArgumentError
from mcp_server.settings import Settings
from mcp_server.tools.guard import READ_ONLY, WRITE, guarded

#: Changes what an endpoint serves, or removes it: a client should confirm.
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)
#: Invoking computes predictions and may capture the request; it changes nothing served.
INVOKE = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=False)
#: The largest request body invoke_endpoint sends, bytes (SageMaker's payload limit).
MAX_BODY_BYTES = 6 * 1024 * 1024

EndpointName = Annotated[
    str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description="the endpoint")
]


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:  # noqa: C901
    """Register the endpoint tools on ``server``."""
    endpoints = backends.endpoints

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def package_model(
        request: Annotated[PackageRequest, Field(description="the registered version to package")],
    ) -> ModelPackageFiles:
        """Write a version's inference Dockerfile, pinned requirements and OpenAPI document beside it.

        The Dockerfile is multi-stage and non-root (hadolint clean); the OpenAPI 3.1 document
        describes ``/ping`` and ``/invocations`` with the model's feature names and types.

        Returns:
            ModelPackageFiles: the three files' URIs, the image to run, the pins.

        Raises:
            EndpointError: the version's metadata cannot be read.
        """
        return endpoints.package_model(request)

    @server.tool(annotations=DESTRUCTIVE)
    @guarded(settings, writes=True)
    def deploy_model(
        desired: Annotated[DesiredEndpoint, Field(description="the variants and weights to serve")],
    ) -> EndpointDescription:
        """Create the endpoint, or change it to serve exactly these production variants.

        Locally one inference server process per endpoint (reloaded in place: new models load
        while the old ones serve); on SageMaker CreateEndpoint or UpdateEndpoint (blue/green with
        auto-rollback alarms when ``blue_green``). A change that fails leaves the endpoint
        serving what it served.

        Returns:
            EndpointDescription: status, URL, variants and weights, deployment history.

        Raises:
            EndpointError: the endpoint serves another model, a model does not load or a variant
                fails ``/ping``, SageMaker refused the change.
        """
        return endpoints.apply(desired)

    @server.tool(annotations=DESTRUCTIVE)
    @guarded(settings, writes=True)
    def shift_traffic(
        endpoint_name: EndpointName,
        weights: Annotated[dict[str, float], Field(description="variant -> percent of traffic (0..100)")],
        by: Annotated[str, Field(max_length=100, description="who shifts it")] = "",
        detail: Annotated[str, Field(max_length=2000, description="why (recorded)")] = "",
    ) -> EndpointDescription:
        """Set the production variants' weights (UpdateEndpointWeightsAndCapacities on SageMaker).

        Returns:
            EndpointDescription: the endpoint with its new weights.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: a weight names an unknown variant.
            InvalidArgumentError: a weight outside 0..100, or every weight 0.
        """
        if any(not 0 <= w <= 100 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise InvalidArgumentError(
                f"weights are percentages in 0..100, at least one above 0; got {weights}"
            )
        return endpoints.shift_traffic(endpoint_name, weights, by=by, detail=detail)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def describe_endpoint(endpoint_name: EndpointName) -> EndpointDescription:
        """Return an endpoint's status, URL, variants (versions, weights), history and served versions.

        Raises:
            NotFoundError: no such endpoint.
        """
        return endpoints.describe_endpoint(endpoint_name)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def list_endpoints() -> list[EndpointDescription]:
        """Return every endpoint this project created, stopped ones included, by name."""
        return endpoints.list_endpoints()

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def get_endpoint_metrics(
        endpoint_name: EndpointName,
        since: Annotated[
            float | None, Field(description="window start, seconds since the epoch (None: all / 5 min)")
        ] = None,
    ) -> EndpointMetrics:
        """Return each variant's requests, 4xx/5xx counts, 5xx rate (fraction), p50/p95/p99 (ms), RPS.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the endpoint does not answer (local) or CloudWatch refused the query.
        """
        return endpoints.get_endpoint_metrics(endpoint_name, since)

    @server.tool(annotations=INVOKE)
    @guarded(settings, writes=False)
    def invoke_endpoint(
        endpoint_name: EndpointName,
        body: Annotated[str, Field(description="JSON rows or CSV lines")],
        content_type: Annotated[str, Field(description="application/json or text/csv")] = "application/json",
        accept: Annotated[str, Field(description="application/json or text/csv")] = "application/json",
        target_variant: Annotated[
            str | None, Field(max_length=63, description="the variant to send it to")
        ] = None,
    ) -> InvocationResult:
        """Send one request to the endpoint; a 4xx or 5xx answer is returned as the result, not raised.

        Raises:
            NotFoundError: no such endpoint.
            InvalidArgumentError: the body is over 6 MB (SageMaker's payload limit).
            EndpointError: the endpoint cannot be reached.
        """
        data = body.encode()
        if len(data) > MAX_BODY_BYTES:
            raise InvalidArgumentError(
                f"the body is {len(data)} bytes; endpoints take at most {MAX_BODY_BYTES}"
            )
        return endpoints.invoke_endpoint(endpoint_name, data, content_type, accept, target_variant)

    @server.tool(annotations=INVOKE)
    @guarded(settings, writes=False)
    def replay_validation_traffic(
        endpoint_name: EndpointName,
        split_uri: Annotated[
            str,
            Field(max_length=2048, description="a dataset split's folder URI (DatasetRef.splits['test'])"),
        ],
        feature_names: Annotated[list[str], Field(min_length=1, max_length=10_000)],
        target_variant: Annotated[str, Field(max_length=63, description="the variant to send the rows to")],
        max_rows: Annotated[int, Field(ge=1, le=10_000, description="rows to send, one a request")] = 200,
    ) -> ReplaySummary:
        """Replay a held-out split to a variant, one row a request: a step is judged on real requests.

        Returns:
            ReplaySummary: requests sent and answers by status class.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the split cannot be read or the endpoint cannot be reached.
        """
        return endpoints.replay_split(endpoint_name, split_uri, feature_names, target_variant, max_rows)

    @server.tool(annotations=DESTRUCTIVE)
    @guarded(settings, writes=True)
    def rollback_endpoint(
        endpoint_name: EndpointName,
        version: Annotated[
            str | None,
            Field(max_length=100, description="a version it served (number, semantic version, or vN)"),
        ] = None,
        by: Annotated[str, Field(max_length=100, description="who rolls it back")] = "",
        reason: Annotated[str, Field(max_length=2000, description="why (recorded)")] = "",
    ) -> EndpointDescription:
        """Return the endpoint to its previous champion, or to a version it served, at 100 % of traffic.

        During a traffic shift the champion keeps serving alone; after a promotion the model
        served before comes back.

        Raises:
            NotFoundError: no such endpoint.
            InvalidArgumentError: nothing to roll back to, or a version the endpoint never served.
            EndpointError: the change failed (the endpoint keeps serving what it served).
        """
        endpoint = endpoints.describe_endpoint(endpoint_name)
        try:
            variant, summary = rollback_variants(endpoint, version)
        except ValueError as err:
            raise InvalidArgumentError(str(err)) from err
        desired = DesiredEndpoint(
            endpoint_name=endpoint_name,
            variants=[variant],
            data_capture_percent=endpoint.data_capture_percent,
            action="rollback",
            by=by,
            detail=f"{summary}: {reason}" if reason else summary,
        )
        return endpoints.apply(desired)

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def record_endpoint_event(
        endpoint_name: EndpointName,
        event: Annotated[DeploymentEvent, Field(description="a check, hold or comparison to record")],
    ) -> EndpointDescription:
        """Append an event (an alarm check and its metrics, a hold, an A/B comparison) to the history.

        Raises:
            NotFoundError: no such endpoint.
        """
        endpoints.record_event(endpoint_name, event)
        return endpoints.describe_endpoint(endpoint_name)

    @server.tool(annotations=DESTRUCTIVE)
    @guarded(settings, writes=True)
    def delete_endpoint(
        endpoint_name: EndpointName,
        by: Annotated[str, Field(max_length=100, description="who deletes it")] = "",
    ) -> EndpointDescription:
        """Stop serving and delete the endpoint; its history and captured data are kept.

        Raises:
            NotFoundError: no such endpoint.
        """
        return endpoints.delete_endpoint(endpoint_name, by=by)
