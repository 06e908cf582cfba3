"""SageMaker's UpdateEndpoint, played at the edge for a client talking to moto (which lacks it).

botocore validates the request against SageMaker's service model before the ``before-call``
event, so a request this handler sees is one SageMaker would accept in shape; the handler then
does what SageMaker does when the update completes: the endpoint serves the new endpoint
config's variants (moto's own records, so DescribeEndpoint shows them).
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

ACCOUNT, REGION = "123456789012", "us-east-1"


class UpdateEndpoint:
    """Registered on a SageMaker client: records each UpdateEndpoint request and applies it in moto."""

    def __init__(self, client: Any) -> None:
        self.requests: list[dict[str, Any]] = []
        client.meta.events.register("before-call.sagemaker.UpdateEndpoint", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        from moto.sagemaker.models import sagemaker_backends

        request = json.loads(params["body"])
        self.requests.append(request)
        backend = sagemaker_backends[ACCOUNT][REGION]
        endpoint = backend.endpoints[request["EndpointName"]]
        config = backend.endpoint_configs[request["EndpointConfigName"]]
        endpoint.endpoint_config_name = config.endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        return SimpleNamespace(status_code=200, headers={}), {"EndpointArn": endpoint.arn}
