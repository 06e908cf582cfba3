"""SageMaker real-time (or serverless) endpoints with production variants.

- ``apply``: one SageMaker model per variant (``CreateModel``: the stack's inference image and
  the version's ``model.tar.gz``), a new endpoint config (``CreateEndpointConfig``: the
  variants and their weights, ``DataCaptureConfig`` to ``s3://BUCKET/capture/``, or
  ``ServerlessConfig``), then ``CreateEndpoint``, or ``UpdateEndpoint`` for an endpoint that
  exists (with ``DeploymentConfig``'s ``BlueGreenUpdatePolicy`` and the endpoint's alarms as
  ``AutoRollbackConfiguration`` for blue/green). With ``auto_scaling``, Application Auto Scaling
  target tracking on ``SageMakerVariantInvocationsPerInstance``. Each variant gets CloudWatch
  alarms on its 5xx error rate and p95 ``ModelLatency`` (the spec's ``rollback_on``).
- ``shift_traffic``: ``UpdateEndpointWeightsAndCapacities`` (the ASL's canary and linear loop).
- ``get_endpoint_metrics``: CloudWatch ``GetMetricData`` on ``AWS/SageMaker``'s
  ``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` and ``ModelLatency``
  (microseconds; p50, p95, p99).
- The endpoint's state (the model it serves, each variant's version) and its deployment history
  are kept under ``s3://BUCKET/endpoints/{name}/``.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from mcp_server.backends.aws.clients import aws_client, error_code, translated
from mcp_server.backends.aws.s3 import read_object, write_object
from mcp_server.backends.base import EndpointBackend
from mcp_server.backends.packaging import package_files
from mcp_server.backends.replay import replay_rows
from mcp_server.core.deployment.metrics import VariantMetrics
from mcp_server.core.deployment.models import (
    DeploymentEvent,
    DesiredEndpoint,
    EndpointDescription,
    EndpointMetrics,
    InvocationResult,
    ModelPackageFiles,
    PackageRequest,
    ReplaySummary,
    ServingModel,
    VariantState,
    event_for,
    served_after,
)
from mcp_server.errors import EndpointError, NotFoundError
from mcp_server.settings import Settings

#: The ``MLOPS_TRAINING_IMAGE_*`` family of the inference image (``training_containers/inference``).
INFERENCE_FAMILY = "inference"
#: Seconds of CloudWatch data a metrics call reads when no start is given.
DEFAULT_WINDOW_S = 300
#: CloudWatch's period for endpoint metrics, seconds (SageMaker publishes every minute).
PERIOD_S = 60
HISTORY_SHOWN = 50
TAG_MODEL = "mlops:model-name"


class SageMakerEndpointBackend(EndpointBackend):
    """Endpoints on SageMaker (see the module docstring).

    Args:
        settings: ``s3_bucket``, ``sagemaker_role_arn``, ``training_images["inference"]``.
        sagemaker, runtime, cloudwatch, autoscaling, s3: boto3 clients (built from ``settings``
            when None).
    """

    def __init__(
        self,
        settings: Settings,
        sagemaker: Any = None,
        runtime: Any = None,
        cloudwatch: Any = None,
        autoscaling: Any = None,
        s3: Any = None,
    ) -> None:
        if not settings.s3_bucket:
            raise EndpointError("SageMaker endpoints keep their state on S3: set MLOPS_BUCKET")
        self._settings = settings
        self._sagemaker = sagemaker or aws_client(settings, "sagemaker")
        self._runtime = runtime or aws_client(settings, "sagemaker-runtime")
        self._cloudwatch = cloudwatch or aws_client(settings, "cloudwatch")
        self._autoscaling = autoscaling or aws_client(settings, "application-autoscaling")
        self._s3 = s3 or aws_client(settings, "s3")
        self._bucket = settings.s3_bucket

    # -- packaging ------------------------------------------------------------------------------

    def package_model(self, request: PackageRequest) -> ModelPackageFiles:
        """Write ``models/{name}/{version}/package/`` on S3 (Dockerfile, requirements.txt, openapi.json).

        The metadata is read from the version's ``model.tar.gz`` when the request has none.

        Raises:
            EndpointError: the archive cannot be read or has no ``metadata.json``.
        """
        model = _resolved(request.model)
        metadata = request.metadata if request.metadata is not None else self._metadata(model.model_data)
        files = package_files(request, metadata)
        version = model.semantic_version or _short(model.version)
        prefix = f"s3://{self._bucket}/models/{model.model_name}/{version}/package"
        with translated(f"write the package of {model.model_name}", "S3", EndpointError):
            for name, text in files.items():
                write_object(self._s3, f"{prefix}/{name}", text.encode(), "text/plain")
        return ModelPackageFiles(
            dockerfile_uri=f"{prefix}/Dockerfile",
            openapi_uri=f"{prefix}/openapi.json",
            requirements_uri=f"{prefix}/requirements.txt",
            image_uri=self._image(),
            requirements=files["requirements.txt"].split(),
        )

    # -- changes ----------------------------------------------------------------------------------

    def apply(self, desired: DesiredEndpoint) -> EndpointDescription:
        """Create the endpoint, or update it to a new endpoint config with ``desired``'s variants.

        Raises:
            EndpointError: the endpoint serves another model; SageMaker refused a model, the
                config or the endpoint (a capacity or validation error names its code).
        """
        desired = desired.model_copy(
            update={
                "variants": [v.model_copy(update={"model": _resolved(v.model)}) for v in desired.variants]
            }
        )
        name = desired.endpoint_name
        model_name = desired.variants[0].model.model_name
        state = self._state(name)
        exists = self._exists(name)
        if exists and state and state.get("model_name") not in (None, model_name):
            raise EndpointError(
                f"endpoint {name} serves model {state['model_name']}, not {model_name}; "
                "set deployment.endpoint_name to another name, or delete it"
            )
        with translated(f"deploy endpoint {name}", "SageMaker", EndpointError):
            models = {v.name: self._ensure_model(name, v) for v in desired.variants}
            config_name = self._create_config(desired, models)
            if exists:
                self._sagemaker.update_endpoint(**self._update_request(desired, config_name))
            else:
                self._sagemaker.create_endpoint(
                    EndpointName=name,
                    EndpointConfigName=config_name,
                    Tags=[{"Key": TAG_MODEL, "Value": model_name}],
                )
        with translated(f"set the alarms of endpoint {name}", "CloudWatch", EndpointError):
            for variant in desired.variants:
                self._put_alarms(desired, variant.name)
        if desired.auto_scaling is not None and desired.serverless is None:
            with translated(f"scale endpoint {name}", "Application Auto Scaling", EndpointError):
                for variant in desired.variants:
                    self._scale(desired, variant.name)
        self._write_state(
            name,
            {
                "model_name": model_name,
                "status": "InService",
                "variants": [v.model_dump(mode="json") for v in desired.variants],
                "config_name": config_name,
                "data_capture_percent": desired.data_capture_percent if desired.serverless is None else 0.0,
                "served": [
                    m.model_dump(mode="json")
                    for m in served_after(
                        [ServingModel.model_validate(m) for m in (state or {}).get("served", [])],
                        desired.variants,
                    )
                ],
            },
        )
        self._append(name, _event(desired.action, desired.variants, desired.by, desired.detail))
        return self.describe_endpoint(name)

    def shift_traffic(
        self, endpoint_name: str, weights: dict[str, float], by: str = "", detail: str = ""
    ) -> EndpointDescription:
        """``UpdateEndpointWeightsAndCapacities`` with each named variant's ``DesiredWeight``.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: a weight names an unknown variant, or SageMaker refused it.
        """
        state = self._require(endpoint_name)
        variants = [VariantState.model_validate(v) for v in state["variants"]]
        unknown = sorted(set(weights) - {v.name for v in variants})
        if unknown:
            raise EndpointError(
                f"endpoint {endpoint_name} has no variant {', '.join(unknown)}; "
                f"its variants are {', '.join(v.name for v in variants)}"
            )
        with translated(f"shift the traffic of endpoint {endpoint_name}", "SageMaker", EndpointError):
            self._sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=endpoint_name,
                DesiredWeightsAndCapacities=[
                    {"VariantName": name, "DesiredWeight": float(weight)} for name, weight in weights.items()
                ],
            )
        variants = [v.model_copy(update={"weight": weights.get(v.name, v.weight)}) for v in variants]
        state["variants"] = [v.model_dump(mode="json") for v in variants]
        self._write_state(endpoint_name, state)
        self._append(endpoint_name, _event("shift", variants, by, detail))
        return self.describe_endpoint(endpoint_name)

    def replay_split(
        self, endpoint_name: str, split_uri: str, feature_names: list[str], target_variant: str, max_rows: int
    ) -> ReplaySummary:
        """Read the split's ``data.parquet`` from S3 and send its rows through the SageMaker runtime.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the split cannot be read, or the runtime refused the calls.
        """
        import pandas as pd

        self._require(endpoint_name)
        uri = f"{split_uri.rstrip('/')}/data.parquet"
        with translated(f"read the validation rows {uri}", "S3", EndpointError):
            data = read_object(self._s3, uri)
        try:
            frame = pd.read_parquet(io.BytesIO(data), columns=feature_names)
        except (OSError, ValueError, KeyError) as err:
            raise EndpointError(f"cannot read the validation rows {uri}: {err}") from err
        return replay_rows(
            frame,
            feature_names,
            lambda body: self.invoke_endpoint(
                endpoint_name, body, "application/json", target_variant=target_variant
            ),
            max_rows,
        )

    def record_event(self, endpoint_name: str, event: DeploymentEvent) -> None:
        """Append ``event`` to ``endpoints/{name}/deployments.jsonl`` on S3."""
        self._require(endpoint_name)
        self._append(endpoint_name, event)

    def delete_endpoint(self, endpoint_name: str, by: str = "") -> EndpointDescription:
        """``DeleteEndpoint`` and its alarms; the state and history on S3 stay (``Stopped``).

        Raises:
            NotFoundError: no such endpoint.
        """
        state = self._require(endpoint_name)
        with translated(f"delete endpoint {endpoint_name}", "SageMaker", EndpointError):
            with contextlib.suppress(ClientError):
                self._sagemaker.delete_endpoint(EndpointName=endpoint_name)
            variants = [VariantState.model_validate(v) for v in state["variants"]]
            alarms = [n for v in variants for n in _alarm_names(endpoint_name, v.name)]
            if alarms:
                self._cloudwatch.delete_alarms(AlarmNames=alarms)
        state["status"] = "Stopped"
        self._write_state(endpoint_name, state)
        self._append(endpoint_name, _event("delete", variants, by, "endpoint deleted"))
        return self.describe_endpoint(endpoint_name)

    # -- reads ------------------------------------------------------------------------------------

    def describe_endpoint(self, endpoint_name: str) -> EndpointDescription:
        """``DescribeEndpoint`` (status, current weights) joined with the state kept on S3.

        Raises:
            NotFoundError: no endpoint of this project with that name.
        """
        state = self._require(endpoint_name)
        variants = [VariantState.model_validate(v) for v in state["variants"]]
        status, reason = state.get("status", "InService"), ""
        if status != "Stopped":
            try:
                found = self._sagemaker.describe_endpoint(EndpointName=endpoint_name)
            except ClientError as err:
                if error_code(err) != "ValidationException":
                    raise
                found = None
            if found is None:
                status, reason = "Failed", "the SageMaker endpoint no longer exists"
            else:
                status, reason = found["EndpointStatus"], found.get("FailureReason", "")
                current = {
                    v["VariantName"]: v.get("CurrentWeight") for v in found.get("ProductionVariants", [])
                }
                variants = [
                    v.model_copy(update={"weight": current[v.name]}) if current.get(v.name) is not None else v
                    for v in variants
                ]
        if status not in ("Creating", "Updating", "InService", "Failed", "Stopped", "Deleting"):
            status = "Updating"  # SystemUpdating, RollingBack, UpdateRollbackFailed
        region = self._settings.aws_region
        return EndpointDescription(
            name=endpoint_name,
            target="sagemaker_endpoint",
            status=status,
            url=f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint_name}/invocations",
            model_name=state.get("model_name", ""),
            variants=variants,
            failure_reason=reason,
            history=self._history(endpoint_name)[-HISTORY_SHOWN:],
            served_models=[ServingModel.model_validate(m) for m in state.get("served", [])],
            data_capture_percent=state.get("data_capture_percent", 0.0),
        )

    def list_endpoints(self) -> list[EndpointDescription]:
        """Every endpoint with a state under ``endpoints/`` on S3, by name."""
        names = []
        with translated("list the endpoints", "S3", EndpointError):
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix="endpoints/"):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/endpoint-state.json"):
                        names.append(item["Key"].split("/")[1])
        return [self.describe_endpoint(name) for name in sorted(names)]

    def get_endpoint_metrics(self, endpoint_name: str, since: float | None = None) -> EndpointMetrics:
        """Each variant's CloudWatch metrics from ``since`` (default: the last 5 minutes) to now.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: CloudWatch refused the query.
        """
        state = self._require(endpoint_name)
        now = time.time()
        start = since if since is not None else now - DEFAULT_WINDOW_S
        variants = [v["name"] for v in state["variants"]]
        queries = []
        for index, variant in enumerate(variants):
            for key, metric, stat in _QUERIES:
                queries.append(
                    {
                        "Id": f"{key}{index}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": metric,
                                "Dimensions": [
                                    {"Name": "EndpointName", "Value": endpoint_name},
                                    {"Name": "VariantName", "Value": variant},
                                ],
                            },
                            "Period": PERIOD_S,
                            "Stat": stat,
                        },
                    }
                )
        values: dict[str, list[float]] = {}
        with translated(f"read the metrics of endpoint {endpoint_name}", "CloudWatch", EndpointError):
            paginator = self._cloudwatch.get_paginator("get_metric_data")
            for page in paginator.paginate(
                MetricDataQueries=queries,
                StartTime=datetime.fromtimestamp(start - PERIOD_S, UTC),
                EndTime=datetime.fromtimestamp(now + 1, UTC),
            ):
                for result in page["MetricDataResults"]:
                    values.setdefault(result["Id"], []).extend(result.get("Values", []))
        seconds = now - start
        return EndpointMetrics(
            endpoint_name=endpoint_name,
            at=now,
            window_s=seconds,
            variants={v: _variant_metrics(v, i, values, seconds) for i, v in enumerate(variants)},
        )

    def invoke_endpoint(
        self,
        endpoint_name: str,
        body: bytes,
        content_type: str,
        accept: str = "application/json",
        target_variant: str | None = None,
    ) -> InvocationResult:
        """``InvokeEndpoint`` on the SageMaker runtime; a model error (4xx, 5xx) is returned, not raised.

        Raises:
            NotFoundError: no such endpoint.
            EndpointError: the runtime refused the call (throttling is a TransientError).
        """
        self._require(endpoint_name)
        arguments: dict[str, Any] = {
            "EndpointName": endpoint_name,
            "Body": body,
            "ContentType": content_type,
            "Accept": accept,
        }
        if target_variant:
            arguments["TargetVariant"] = target_variant
        try:
            answer = self._runtime.invoke_endpoint(**arguments)
        except ClientError as err:
            if error_code(err) == "ModelError":
                error = err.response.get("OriginalStatusCode") or 500
                return InvocationResult(status=int(error), body=str(err.response.get("OriginalMessage", err)))
            with translated(f"invoke endpoint {endpoint_name}", "SageMaker runtime", EndpointError):
                raise
            raise  # pragma: no cover - translated always raises
        payload = answer["Body"].read()
        return InvocationResult(
            status=200,
            body=payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload),
            content_type=answer.get("ContentType", ""),
            variant=answer.get("InvokedProductionVariant", ""),
        )

    # -- SageMaker requests -----------------------------------------------------------------------

    def _image(self) -> str:
        image = self._settings.training_images.get(INFERENCE_FAMILY)
        if not image:
            raise EndpointError(
                "no inference image: set MLOPS_TRAINING_IMAGE_INFERENCE (the stack's mlops-inference "
                "repository, built from training_containers/inference/Dockerfile)"
            )
        return image

    def _ensure_model(self, endpoint_name: str, variant: VariantState) -> str:
        """``CreateModel`` for the variant's version once (its name is endpoint and variant)."""
        name = f"{endpoint_name}-{variant.name}"[:63].rstrip("-")
        try:
            self._sagemaker.describe_model(ModelName=name)
            return name
        except ClientError as err:
            if error_code(err) != "ValidationException":
                raise
        environment = {
            "MLOPS_ENDPOINT_NAME": endpoint_name,
            "MLOPS_MODEL_VERSION": variant.model.semantic_version or variant.model.version,
        }
        if variant.model.class_labels:
            environment["MLOPS_CLASS_LABELS"] = json.dumps(variant.model.class_labels)
        self._sagemaker.create_model(
            ModelName=name,
            PrimaryContainer={
                "Image": self._image(),
                "ModelDataUrl": variant.model.model_data,
                "Environment": environment,
            },
            ExecutionRoleArn=self._role(),
        )
        return name

    def _role(self) -> str:
        if not self._settings.sagemaker_role_arn:
            raise EndpointError("SageMaker models run as a role: set MLOPS_SAGEMAKER_ROLE_ARN")
        return self._settings.sagemaker_role_arn

    def _create_config(self, desired: DesiredEndpoint, models: dict[str, str]) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        name = f"{desired.endpoint_name[:40]}-{stamp}"
        variants = []
        for variant in desired.variants:
            entry: dict[str, Any] = {
                "VariantName": variant.name,
                "ModelName": models[variant.name],
                "InitialVariantWeight": float(variant.weight),
            }
            if desired.serverless is not None:
                entry["ServerlessConfig"] = {
                    "MemorySizeInMB": desired.serverless.memory_mb,
                    "MaxConcurrency": desired.serverless.max_concurrency,
                }
            else:
                entry["InstanceType"] = variant.instance_type
                entry["InitialInstanceCount"] = variant.instance_count
            variants.append(entry)
        request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": variants}
        if desired.data_capture_percent > 0 and desired.serverless is None:
            request["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": max(1, round(desired.data_capture_percent)),
                "DestinationS3Uri": f"s3://{self._bucket}/capture",
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {
                    "CsvContentTypes": ["text/csv"],
                    "JsonContentTypes": ["application/json"],
                },
            }
        self._sagemaker.create_endpoint_config(**request)
        return name

    def _update_request(self, desired: DesiredEndpoint, config_name: str) -> dict[str, Any]:
        """``UpdateEndpoint``'s arguments: blue/green with auto-rollback on the alarms when asked."""
        request: dict[str, Any] = {"EndpointName": desired.endpoint_name, "EndpointConfigName": config_name}
        if desired.blue_green:
            alarms = [n for v in desired.variants for n in _alarm_names(desired.endpoint_name, v.name)]
            request["DeploymentConfig"] = {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                    "TerminationWaitInSeconds": desired.bake_s,
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
            }
        return request

    def _put_alarms(self, desired: DesiredEndpoint, variant: str) -> None:
        """The variant's 5xx error-rate and p95-latency alarms (``rollback_on``'s limits)."""
        error_alarm, latency_alarm = _alarm_names(desired.endpoint_name, variant)
        dimensions = [
            {"Name": "EndpointName", "Value": desired.endpoint_name},
            {"Name": "VariantName", "Value": variant},
        ]

        def metric(name: str, key: str) -> dict[str, Any]:
            return {
                "Id": key,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dimensions},
                    "Period": PERIOD_S,
                    "Stat": "Sum",
                },
            }

        self._cloudwatch.put_metric_alarm(
            AlarmName=error_alarm,
            AlarmDescription=f"5xx share of {desired.endpoint_name}/{variant} above rollback_on.error_rate",
            Metrics=[
                metric("Invocation5XXErrors", "errors"),
                metric("Invocations", "invocations"),
                {"Id": "rate", "Expression": "errors / MAX([invocations, 1])", "ReturnData": True},
            ],
            ComparisonOperator="GreaterThanThreshold",
            Threshold=desired.error_rate,
            EvaluationPeriods=1,
            TreatMissingData="notBreaching",
        )
        self._cloudwatch.put_metric_alarm(
            AlarmName=latency_alarm,
            AlarmDescription=f"p95 ModelLatency of {desired.endpoint_name}/{variant} above the limit",
            Namespace="AWS/SageMaker",
            MetricName="ModelLatency",
            Dimensions=dimensions,
            ExtendedStatistic="p95",
            Period=PERIOD_S,
            EvaluationPeriods=1,
            Threshold=desired.p95_latency_ms * 1000,  # ModelLatency is in microseconds
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )

    def _scale(self, desired: DesiredEndpoint, variant: str) -> None:
        scaling = desired.auto_scaling
        assert scaling is not None
        resource = f"endpoint/{desired.endpoint_name}/variant/{variant}"
        self._autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=scaling.min_instances,
            MaxCapacity=scaling.max_instances,
        )
        self._autoscaling.put_scaling_policy(
            PolicyName=f"{desired.endpoint_name}-{variant}-invocations"[:256],
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(scaling.target_invocations_per_instance),
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
            },
        )

    def _exists(self, name: str) -> bool:
        try:
            self._sagemaker.describe_endpoint(EndpointName=name)
            return True
        except ClientError as err:
            if error_code(err) == "ValidationException":
                return False
            raise

    def _metadata(self, model_data: str) -> dict[str, Any]:
        with translated(f"read {model_data}", "S3", EndpointError):
            archive = read_object(self._s3, model_data)
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as bundle:
                member = bundle.extractfile("metadata.json")
                if member is None:
                    raise KeyError("metadata.json")
                return json.loads(member.read())
        except (tarfile.TarError, KeyError, ValueError) as err:
            raise EndpointError(f"{model_data} has no readable metadata.json ({err})") from err

    # -- state on S3 ------------------------------------------------------------------------------

    def _state_uri(self, name: str, file: str) -> str:
        return f"s3://{self._bucket}/endpoints/{name}/{file}"

    def _state(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(read_object(self._s3, self._state_uri(name, "endpoint-state.json")))
        except ClientError as err:
            if error_code(err) in ("NoSuchKey", "404"):
                return None
            raise

    def _require(self, name: str) -> dict[str, Any]:
        with translated(f"read endpoint {name}", "S3", EndpointError):
            state = self._state(name)
        if state is None:
            raise NotFoundError(f"no endpoint named {name}")
        return state

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        with translated(f"record endpoint {name}", "S3", EndpointError):
            write_object(
                self._s3,
                self._state_uri(name, "endpoint-state.json"),
                json.dumps(state).encode(),
                "application/json",
            )

    def _history(self, name: str) -> list[DeploymentEvent]:
        try:
            text = read_object(self._s3, self._state_uri(name, "deployments.jsonl")).decode()
        except ClientError:
            return []
        events = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                events.append(DeploymentEvent.model_validate_json(line))
        return events

    def _append(self, name: str, event: DeploymentEvent) -> None:
        lines = [e.model_dump_json() for e in self._history(name)] + [event.model_dump_json()]
        with translated(f"record the history of endpoint {name}", "S3", EndpointError):
            write_object(
                self._s3,
                self._state_uri(name, "deployments.jsonl"),
                ("\n".join(lines) + "\n").encode(),
                "application/x-ndjson",
            )


#: (query id prefix, CloudWatch metric, statistic) read per variant.
_QUERIES = (
    ("invocations", "Invocations", "Sum"),
    ("errors4xx", "Invocation4XXErrors", "Sum"),
    ("errors5xx", "Invocation5XXErrors", "Sum"),
    ("p50", "ModelLatency", "p50"),
    ("p95", "ModelLatency", "p95"),
    ("p99", "ModelLatency", "p99"),
)


def _variant_metrics(
    variant: str, index: int, values: dict[str, list[float]], seconds: float
) -> VariantMetrics:
    """CloudWatch's datapoints as ``VariantMetrics``: sums added, the worst minute's percentiles (ms)."""

    def total(key: str) -> int:
        return int(sum(values.get(f"{key}{index}", [])))

    def worst_ms(key: str) -> float | None:
        found = [v for v in values.get(f"{key}{index}", []) if v is not None]
        return round(max(found) / 1000, 3) if found else None  # microseconds -> ms

    requests, client, server = total("invocations"), total("errors4xx"), total("errors5xx")
    return VariantMetrics(
        variant=variant,
        requests=requests,
        errors_4xx=client,
        errors_5xx=server,
        error_rate=server / requests if requests else 0.0,
        p50_ms=worst_ms("p50"),
        p95_ms=worst_ms("p95"),
        p99_ms=worst_ms("p99"),
        rps=round(requests / seconds, 3) if seconds > 0 else None,
    )


def _resolved(model: ServingModel) -> ServingModel:
    """The model with ``model_data`` set: the training job's ``model.tar.gz`` (what the package names)."""
    return model if model.model_data else model.model_copy(update={"model_data": model.model_uri})


def _alarm_names(endpoint: str, variant: str) -> tuple[str, str]:
    return f"{endpoint}-{variant}-error-rate", f"{endpoint}-{variant}-p95-latency"


def _short(version: str) -> str:
    return version.rsplit("/", 1)[-1]


def _event(action: Any, variants: list[VariantState], by: str, detail: str) -> DeploymentEvent:
    return event_for(action, variants, datetime.now(UTC).isoformat(timespec="seconds"), by, detail)
