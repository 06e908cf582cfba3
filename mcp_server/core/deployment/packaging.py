"""A registered version's inference image: its pinned requirements and Dockerfile. Pure.

The image is ``training_containers/inference``'s server with the version's model folder baked in
at ``/opt/ml/model`` (SageMaker's model directory). It is built from the repository root with
the model folder and the package folder (this Dockerfile and ``requirements.txt``) as named
build contexts::

    docker build -f PACKAGE/Dockerfile --build-context model=MODEL_FOLDER --build-context package=PACKAGE .
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: Extra distributions an algorithm's model needs at inference (torch comes from the CPU index).
EXTRA_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "neural_network": ("skorch",),
}
#: Algorithms whose models are torch modules (installed first, from the CPU wheel index).
TORCH_ALGORITHMS = frozenset({"neural_network", "dqn", "ppo", "a3c"})


def inference_requirements(
    algorithm: str, base: Sequence[str], installed_version: Callable[[str], str]
) -> list[str]:
    """The image's pinned requirements: the inference server's pins plus the algorithm's extras.

    Args:
        algorithm: the spec's algorithm.
        base: the lines of ``training_containers/inference/requirements.txt`` (comments skipped).
        installed_version: distribution -> the version the tests ran (``importlib.metadata``).
    """
    pins = [line.strip() for line in base if line.strip() and not line.lstrip().startswith("#")]
    pins += [f"{dist}=={installed_version(dist)}" for dist in EXTRA_DISTRIBUTIONS.get(algorithm, ())]
    return pins


def render_dockerfile(model_name: str, version: str, algorithm: str, torch_version: str) -> str:
    """The version's multi-stage, non-root inference Dockerfile (hadolint clean).

    Args:
        model_name: the registered model (the image's title).
        version: the version packaged (semantic when known).
        algorithm: torch-based algorithms install ``torch==torch_version`` from the CPU index first.
        torch_version: the torch release without its local label (``2.13.0``).
    """
    torch = (
        f"    && /opt/venv/bin/pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "
        f"torch=={torch_version} \\\n"
        if algorithm in TORCH_ALGORITHMS
        else ""
    )
    return f"""# Inference image of {model_name} version {version}, written by issue-mlops.
# Build from the repository root, with the version's model folder and this folder as contexts:
#   docker build -f PACKAGE/Dockerfile --build-context model=MODEL_FOLDER \\
#     --build-context package=PACKAGE -t {model_name.lower()}:{version} .
# SageMaker runs "docker run IMAGE serve": GET /ping and POST /invocations on port 8080.

# The two build contexts replace these empty stages (BuildKit: a named context overrides the
# stage of the same name); building without them fails at the COPY that needs them.
FROM scratch AS model
FROM scratch AS package

# Stage 1: the pinned packages in a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_ROOT_USER_ACTION=ignore
COPY --from=package requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \\
{torch}    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# Stage 2: the runtime and the model, as a user without privileges.
FROM python:3.11-slim
LABEL org.opencontainers.image.title="{model_name}" \\
      org.opencontainers.image.version="{version}"
ENV PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONPATH=/opt/program \\
    PATH=/opt/venv/bin:$PATH
COPY --from=build /opt/venv /opt/venv
COPY training_containers/ /opt/program/training_containers/
COPY --from=model . /opt/ml/model/
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin model
USER 10001
WORKDIR /opt/program
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s \\
    CMD ["python", "-c", \\
         "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=2)"]
ENTRYPOINT ["python", "-m", "training_containers.inference.serve"]
CMD ["serve"]
"""
