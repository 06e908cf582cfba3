"""The inference server: SageMaker's inference contract, production variants, capture and metrics.

Routes:

- ``GET /ping``: 200 once every variant's model is loaded;
- ``POST /invocations``: JSON or CSV rows (``schema``) → ``{"predictions", "probabilities"?,
  "variant", "model_version"}`` as JSON, or one prediction a line when ``Accept: text/csv``.
  The production variant is the one named by the ``X-Amzn-SageMaker-Target-Variant`` header
  (SageMaker's ``TargetVariant``), else one chosen at random by weight. The caller's
  ``X-Amzn-SageMaker-Inference-Id`` (SageMaker's ``InferenceId``, at most 64 characters) is kept
  in the request's capture record, where ground truth finds it. A row that does not fit
  the model is a 400 naming the row and the feature; a model failure is a 500 whose body says so;
- ``GET /openapi.json`` and ``GET /docs``: the OpenAPI document generated from the input schema
  (of the variant with the largest weight) and its interactive page (Swagger UI);
- ``GET /metrics``: per variant, the latency histogram (seconds) and the responses by status
  class, and the process's CPU seconds and resident memory, in the Prometheus text format
  (``prometheus_client``);
- ``POST /admin/reload`` (a local endpoint only, from 127.0.0.1): read ``endpoint.json`` again
  and switch to its variants and weights atomically (``create_app``).

It runs in two ways:

- **in SageMaker** (``docker run IMAGE serve``): one variant, ``AllTraffic``, whose model is
  ``/opt/ml/model`` (SageMaker routes between variants and captures data itself), on port 8080;
- **locally** (``--config endpoint.json``): every variant of the endpoint in one process, with
  data capture when configured (``EndpointConfig``).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from training_containers.inference.capture import CaptureWriter
from training_containers.inference.predictor import Predictor, load_predictor
from training_containers.inference.schema import MAX_BODY_BYTES, RequestError, openapi_document, parse_body

LOG = logging.getLogger("inference")
#: SageMaker's model folder and port inside an inference container.
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
SAGEMAKER_PORT = 8080
#: The header SageMaker's runtime sends for ``InvokeEndpoint(TargetVariant=...)``.
TARGET_VARIANT_HEADER = "x-amzn-sagemaker-target-variant"
#: The caller's id of a request (SageMaker's ``InferenceId``), kept in its capture record.
INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"
#: SageMaker's limit on an ``InferenceId``, characters.
MAX_INFERENCE_ID_CHARS = 64
#: Latency histogram buckets, seconds: fine below 10 ms, where a served row should be.
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
    0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True)
class VariantConfig:
    """One production variant: a model folder and its share of the traffic.

    Attributes:
        name: the variant's name (``[A-Za-z0-9-]``, as SageMaker's ``VariantName``).
        model_dir: the training job's model folder.
        weight: its traffic weight (relative to the other variants'; 0 serves only requests
            that name it).
        model_version: the registry version it serves, echoed in responses.
        class_labels: each class code's label, or None.
    """

    name: str
    model_dir: str
    weight: float = 1.0
    model_version: str = ""
    class_labels: list[str] | None = None


@dataclass(frozen=True)
class EndpointConfig:
    """What a local endpoint serves (``endpoint.json``).

    Attributes:
        endpoint_name: the endpoint's name.
        variants: its production variants.
        capture_root: the data capture folder, or None for no capture.
        sampling_percentage: the share of requests captured, percent.
    """

    endpoint_name: str
    variants: list[VariantConfig] = field(default_factory=list)
    capture_root: str | None = None
    sampling_percentage: float = 100.0

    @classmethod
    def read(cls, path: Path) -> EndpointConfig:
        """Read ``endpoint.json``.

        Raises:
            ValueError: not JSON, a field missing or of the wrong type, no variants, a
                negative weight, or every weight 0.
        """
        try:
            body = json.loads(Path(path).read_text())
            variants = [VariantConfig(**variant) for variant in body.pop("variants")]
            config = cls(variants=variants, **body)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not an endpoint configuration ({err})") from err
        config.check()
        return config

    def check(self) -> None:
        """Raise ValueError unless the variants are named uniquely with usable weights."""
        names = [variant.name for variant in self.variants]
        if not names:
            raise ValueError(f"endpoint {self.endpoint_name!r} has no variants")
        if len(set(names)) != len(names):
            raise ValueError(f"endpoint {self.endpoint_name!r} names a variant twice: {names}")
        if any(variant.weight < 0 for variant in self.variants) or not any(
            v.weight > 0 for v in self.variants
        ):
            raise ValueError(f"endpoint {self.endpoint_name!r}: weights must be ≥ 0, at least one > 0")


class Router:
    """Chooses a variant by weight (SageMaker's weighted routing), or the one a request names.

    Args:
        weights: variant -> weight (≥ 0, at least one > 0).
        seed: seeds the choice (tests), or None.
    """

    def __init__(self, weights: dict[str, float], seed: int | None = None) -> None:
        """Precompute the cumulative weights."""
        self.weights = dict(weights)
        self._names = [name for name, weight in weights.items() if weight > 0]
        self._cumulative = list(itertools.accumulate(weights[name] for name in self._names))
        self._random = random.Random(seed)

    def choose(self, target: str | None = None) -> str:
        """The variant for one request.

        Raises:
            RequestError: ``target`` names no variant of the endpoint.
        """
        if target:
            if target not in self.weights:
                raise RequestError(
                    f"TargetVariant {target!r} is not a variant of this endpoint; "
                    f"its variants are {', '.join(self.weights)}"
                )
            return target
        point = self._random.random() * self._cumulative[-1]
        return self._names[bisect.bisect_right(self._cumulative, point)]


@dataclass
class Variant:
    """A loaded variant."""

    config: VariantConfig
    predictor: Predictor


@dataclass(frozen=True)
class Serving:
    """What an endpoint serves at one moment; replaced whole, never changed in place.

    Attributes:
        config: the configuration it was loaded from.
        variants: variant name -> its loaded model.
        router: the weighted choice among them.
        document: the OpenAPI document of the variant with the largest weight.
    """

    config: EndpointConfig
    variants: dict[str, Variant]
    router: Router
    document: dict[str, Any]


def load_serving(config: EndpointConfig, seed: int | None = None, previous: Serving | None = None) -> Serving:
    """Load every variant of ``config``, reusing the models ``previous`` already holds.

    A model is reused when its folder and class labels are unchanged, so a change of weights
    loads nothing (a training job's model folder is written once, never replaced).

    Raises:
        FileNotFoundError, ValueError: a variant's model cannot be loaded or served, or the
            configuration is unusable (``EndpointConfig.check``).
    """
    config.check()
    loaded = {}
    if previous is not None:
        loaded = {
            (v.config.model_dir, tuple(v.config.class_labels or ())): v.predictor
            for v in previous.variants.values()
        }
    variants = {}
    for variant in config.variants:
        key = (variant.model_dir, tuple(variant.class_labels or ()))
        predictor = loaded.get(key) or load_predictor(Path(variant.model_dir), variant.class_labels)
        variants[variant.name] = Variant(variant, predictor)
    main = max(config.variants, key=lambda v: v.weight)
    document = openapi_document(
        variants[main.name].predictor.schema, f"{config.endpoint_name} endpoint", main.model_version or "1"
    )
    return Serving(config, variants, Router({v.name: v.weight for v in config.variants}, seed), document)


def create_app(config: EndpointConfig, seed: int | None = None, config_path: Path | None = None) -> Starlette:
    """The ASGI application serving ``config``'s variants (see the module and ``EndpointServer``).

    Raises:
        FileNotFoundError, ValueError: a variant's model cannot be loaded or served.
    """
    return EndpointServer(config, seed, config_path).app


class EndpointServer:
    """One endpoint's routes over a ``Serving`` that a reload replaces atomically.

    Every model is loaded in the constructor, so a model that does not load fails there, not
    on a request. With ``config_path`` (a local endpoint), ``POST /admin/reload`` from 127.0.0.1
    reads that file again and switches to it: the new variants' models are loaded while the old
    ones serve, then every later request is routed by the new configuration and none fails
    (traffic shifts, blue/green). A configuration that does not load is a 400 with the reason,
    and the old one keeps serving. The endpoint's name and capture folder are fixed for the
    life of the process.

    Args:
        config: what to serve first.
        seed: seeds the routing and the capture sampling (tests), or None.
        config_path: the file ``config`` was read from, or None (no reload).

    Raises:
        FileNotFoundError, ValueError: a variant's model cannot be loaded or served.
    """

    def __init__(
        self, config: EndpointConfig, seed: int | None = None, config_path: Path | None = None
    ) -> None:
        """Load the models, create the metrics and the capture writer, build the routes."""
        self.config, self.seed, self.config_path = config, seed, config_path
        self.serving = load_serving(config, seed)
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes
        self.latency = Histogram(
            "endpoint_latency_seconds",
            "Time to answer an invocation, seconds",
            ["endpoint", "variant"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.responses = Counter(
            "endpoint_responses",
            "Invocations answered, by status class",
            ["endpoint", "variant", "status"],
            registry=self.registry,
        )
        self.capture = (
            CaptureWriter(Path(config.capture_root), config.endpoint_name, config.sampling_percentage, seed)
            if config.capture_root
            else None
        )
        self._bound: dict[str, tuple[Any, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/ping", self.ping, methods=["GET"]),
                Route("/invocations", self.invocations, methods=["POST"]),
                Route("/openapi.json", self.openapi, methods=["GET"]),
                Route("/docs", self.docs, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
                Route("/admin/reload", self.reload, methods=["POST"]),
            ],
            lifespan=self.lifespan,
        )

    def _series(self, name: str) -> tuple[Any, Any]:
        """The successful path's latency and 2xx series of a variant, bound once.

        ``labels()`` takes a lock and a lookup a call; a bound method does not.
        """
        if name not in self._bound:
            endpoint = self.config.endpoint_name
            self._bound[name] = (
                self.latency.labels(endpoint, name).observe,
                self.responses.labels(endpoint, name, "2xx").inc,
            )
        return self._bound[name]

    async def ping(self, request: Request) -> Response:
        """``GET /ping``: 200 (the models are loaded before the server listens)."""
        return Response(status_code=200)

    async def invocations(self, request: Request) -> Response:
        """``POST /invocations``: see the module."""
        started = time.perf_counter()
        serving = self.serving  # one consistent configuration for the whole request
        variant_name = "-"
        try:
            variant_name = serving.router.choose(request.headers.get(TARGET_VARIANT_HEADER))
            variant = serving.variants[variant_name]
            body = await _read_body(request)
            content_type = request.headers.get("content-type", "application/json")
            rows = parse_body(variant.predictor.schema, body, content_type)
        except RequestError as err:
            return self._answer(variant_name, 400, {"error": str(err)}, started)
        try:
            result = variant.predictor.predict(rows)
        except Exception as err:  # the model's own failure: a 500 that says so, logged
            LOG.exception("variant %s failed to predict", variant_name)
            reason = f"{type(err).__name__}: {err}"[:400]
            return self._answer(
                variant_name,
                500,
                {"error": f"the model of variant {variant_name} failed to predict: {reason}"},
                started,
            )
        result["variant"] = variant_name
        if variant.config.model_version:
            result["model_version"] = variant.config.model_version
        payload, out_type = encode(result, request.headers.get("accept", ""))
        response = Response(payload, media_type=out_type, headers={"X-Variant": variant_name})
        observe, succeeded = self._series(variant_name)
        observe(time.perf_counter() - started)
        succeeded()
        if self.capture is not None:
            inference_id = request.headers.get(INFERENCE_ID_HEADER, "")[:MAX_INFERENCE_ID_CHARS]
            self.capture.offer(variant_name, content_type, body, out_type, payload, inference_id)
        return response

    async def reload(self, request: Request) -> Response:
        """``POST /admin/reload``: switch to the configuration file's variants and weights."""
        if self.config_path is None:
            return JSONResponse(
                {"error": "this endpoint has no configuration file to reload"}, status_code=404
            )
        if request.client is None or request.client.host not in ("127.0.0.1", "::1"):
            return JSONResponse({"error": "reload is accepted from this machine only"}, status_code=403)
        try:
            fresh = EndpointConfig.read(self.config_path)
            if (
                fresh.endpoint_name != self.config.endpoint_name
                or fresh.capture_root != self.config.capture_root
            ):
                raise ValueError(
                    "the endpoint's name and capture folder cannot change while it runs; start a new endpoint"
                )
            serving = await run_in_threadpool(load_serving, fresh, self.seed, self.serving)
        except (OSError, ValueError) as err:
            return JSONResponse(
                {"error": f"not reloaded, the previous configuration serves: {err}"}, status_code=400
            )
        self.serving = serving
        if self.capture is not None:
            self.capture.fraction = max(0.0, min(100.0, fresh.sampling_percentage)) / 100
        return JSONResponse({"variants": {v.name: v.weight for v in fresh.variants}})

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``."""
        return JSONResponse(self.serving.document)

    async def docs(self, request: Request) -> Response:
        """``GET /docs``: Swagger UI over ``/openapi.json``."""
        return HTMLResponse(_SWAGGER_PAGE.format(title=self.serving.document["info"]["title"]))

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: the Prometheus text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> Any:
        """Write the waiting capture records when the server stops."""
        yield
        if self.capture is not None:
            self.capture.close()

    def _answer(self, variant: str, status: int, body: dict[str, Any], started: float) -> Response:
        """A JSON error answer, counted and timed."""
        self.latency.labels(self.config.endpoint_name, variant).observe(time.perf_counter() - started)
        self.responses.labels(self.config.endpoint_name, variant, f"{status // 100}xx").inc()
        return JSONResponse(body, status_code=status)


def encode(result: dict[str, Any], accept: str) -> tuple[bytes, str]:
    """The response body and its type: one prediction a line for ``Accept: text/csv``, else JSON."""
    if "text/csv" in accept:
        return "".join(f"{p}\n" for p in result["predictions"]).encode(), "text/csv"
    return json.dumps(result, separators=(",", ":")).encode(), "application/json"


async def _read_body(request: Request) -> bytes:
    """The request body, refused past ``MAX_BODY_BYTES`` without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestError(f"the body has {declared} bytes; at most {MAX_BODY_BYTES} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestError(
                f"the body has more than {MAX_BODY_BYTES} bytes; at most {MAX_BODY_BYTES} are accepted"
            )
        chunks.append(chunk)
    return b"".join(chunks)


_SWAGGER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui"}});</script>
</body></html>
"""


def sagemaker_config(environ: dict[str, str] | None = None) -> EndpointConfig:
    """The configuration inside a SageMaker inference container: one variant, ``/opt/ml/model``.

    ``SM_MODEL_DIR`` moves the model folder; ``MLOPS_CLASS_LABELS`` (a JSON list) names the
    classes.
    """
    env = os.environ if environ is None else environ
    labels = json.loads(env["MLOPS_CLASS_LABELS"]) if env.get("MLOPS_CLASS_LABELS") else None
    model_dir = env.get("SM_MODEL_DIR") or SAGEMAKER_MODEL_DIR
    variant = VariantConfig("AllTraffic", model_dir, 1.0, env.get("MLOPS_MODEL_VERSION", ""), labels)
    return EndpointConfig(env.get("MLOPS_ENDPOINT_NAME", "sagemaker"), [variant])


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until stopped: ``[serve] [--config endpoint.json] [--host H] [--port P]``.

    Returns:
        The exit status: 0 after a clean stop, 2 when the configuration or a model cannot be
        loaded (the reason is printed, without a traceback).
    """
    parser = argparse.ArgumentParser(prog="serve", description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "command", nargs="?", choices=["serve"], help="SageMaker starts the container with 'serve'"
    )
    parser.add_argument(
        "--config", type=Path, help="endpoint.json (local endpoint); else SageMaker's /opt/ml/model"
    )
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on every interface
    parser.add_argument("--port", type=int, default=SAGEMAKER_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = EndpointConfig.read(args.config) if args.config else sagemaker_config()
        app = create_app(config, config_path=args.config)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"serve: cannot start: {err}\n")
        return 2
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
