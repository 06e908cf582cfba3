"""The inference server: SageMaker's inference contract, production variants, capture and metrics.

Routes:

- ``GET /ping``: 200 once every variant's model is loaded;
- ``POST /invocations``: JSON or CSV rows (``schema``) → ``{"predictions", "probabilities"?,
  "variant", "model_version"}`` as JSON, or one prediction a line when ``Accept: text/csv``.
  The production variant is the one named by the ``X-Amzn-SageMaker-Target-Variant`` header
  (SageMaker's ``TargetVariant``), else one chosen at random by weight. A row that does not fit
  the model is a 400 naming the row and the feature; a model failure is a 500 whose body says so;
- ``GET /openapi.json`` and ``GET /docs``: the OpenAPI document generated from the input schema
  (of the variant with the largest weight) and its interactive page (Swagger UI);
- ``GET /metrics``: per variant, the latency histogram (seconds) and the responses by status
  class, in the Prometheus text format (``prometheus_client``).

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

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
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


def create_app(config: EndpointConfig, seed: int | None = None) -> Starlette:
    """The ASGI application serving ``config``'s variants (see the module).

    Every model is loaded before the application is returned, so a model that does not load
    fails here, not on a request.

    Raises:
        FileNotFoundError, ValueError: a variant's model cannot be loaded or served.
    """
    config.check()
    variants = {
        v.name: Variant(v, load_predictor(Path(v.model_dir), v.class_labels)) for v in config.variants
    }
    router = Router({v.name: v.weight for v in config.variants}, seed)
    main = max(config.variants, key=lambda v: v.weight)
    document = openapi_document(
        variants[main.name].predictor.schema, f"{config.endpoint_name} endpoint", main.model_version or "1"
    )
    registry = CollectorRegistry()
    latency = Histogram(
        "endpoint_latency_seconds",
        "Time to answer an invocation, seconds",
        ["endpoint", "variant"],
        buckets=LATENCY_BUCKETS_S,
        registry=registry,
    )
    responses = Counter(
        "endpoint_responses",
        "Invocations answered, by status class",
        ["endpoint", "variant", "status"],
        registry=registry,
    )
    capture = (
        CaptureWriter(Path(config.capture_root), config.endpoint_name, config.sampling_percentage, seed)
        if config.capture_root
        else None
    )
    endpoint = config.endpoint_name
    # the successful path's series, bound once (labels() takes a lock and a lookup a call)
    observe = {name: latency.labels(endpoint, name).observe for name in variants}
    succeeded = {name: responses.labels(endpoint, name, "2xx").inc for name in variants}

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        variant_name = "-"
        try:
            variant_name = router.choose(request.headers.get(TARGET_VARIANT_HEADER))
            variant = variants[variant_name]
            body = await _read_body(request)
            content_type = request.headers.get("content-type", "application/json")
            rows = parse_body(variant.predictor.schema, body, content_type)
        except RequestError as err:
            return _answer(endpoint, variant_name, 400, {"error": str(err)}, started, latency, responses)
        try:
            result = variant.predictor.predict(rows)
        except Exception as err:  # the model's own failure: a 500 that says so, logged
            LOG.exception("variant %s failed to predict", variant_name)
            reason = f"{type(err).__name__}: {err}"[:400]
            body_500 = {"error": f"the model of variant {variant_name} failed to predict: {reason}"}
            return _answer(endpoint, variant_name, 500, body_500, started, latency, responses)
        result["variant"] = variant_name
        if variant.config.model_version:
            result["model_version"] = variant.config.model_version
        payload, out_type = encode(result, request.headers.get("accept", ""))
        response = Response(payload, media_type=out_type, headers={"X-Variant": variant_name})
        observe[variant_name](time.perf_counter() - started)
        succeeded[variant_name]()
        if capture is not None:
            capture.offer(variant_name, content_type, body, out_type, payload)
        return response

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(_SWAGGER_PAGE.format(title=document["info"]["title"]))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        if capture is not None:
            capture.close()

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.capture = capture
    return app


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


def _answer(
    endpoint: str,
    variant: str,
    status: int,
    body: dict[str, Any],
    started: float,
    latency: Any,
    responses: Any,
) -> Response:
    latency.labels(endpoint, variant).observe(time.perf_counter() - started)
    responses.labels(endpoint, variant, f"{status // 100}xx").inc()
    return JSONResponse(body, status_code=status)


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
        app = create_app(config)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"serve: cannot start: {err}\n")
        return 2
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
