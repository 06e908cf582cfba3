"""The files that package a registered version, shared by both endpoint backends.

``package_files`` returns ``Dockerfile``, ``requirements.txt`` and ``openapi.json`` as text; the
local backend writes them beside the version's folder, the SageMaker backend under the version's
S3 prefix.
"""

from __future__ import annotations

import json
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from mcp_server.core.deployment.models import PackageRequest
from mcp_server.core.deployment.packaging import inference_requirements, render_dockerfile
from mcp_server.errors import EndpointError

#: The inference server's own pins (the image the tests served from).
BASE_REQUIREMENTS = (
    Path(__file__).resolve().parents[2] / "training_containers" / "inference" / "requirements.txt"
)


def package_files(request: PackageRequest, metadata: dict[str, Any]) -> dict[str, str]:
    """Return file name -> text of the version's package.

    Args:
        request: the version.
        metadata: its model folder's ``metadata.json``.

    Raises:
        EndpointError: the metadata names no features (nothing to describe or serve).
    """
    from training_containers.inference.schema import InputSchema, openapi_document

    model = request.model
    try:
        schema = InputSchema.from_metadata(metadata, model.class_labels)
    except ValueError as err:
        raise EndpointError(f"cannot package {model.model_name} version {model.version}: {err}") from err
    title = f"{model.model_name} {model.semantic_version or model.version}"
    document = openapi_document(schema, title, model.semantic_version or model.version)
    requirements = inference_requirements(
        model.algorithm, BASE_REQUIREMENTS.read_text().splitlines(), installed_version
    )
    torch = installed_version("torch").split("+")[0]
    return {
        "Dockerfile": render_dockerfile(
            model.model_name, model.semantic_version or model.version, model.algorithm, torch
        ),
        "requirements.txt": "\n".join(requirements) + "\n",
        "openapi.json": json.dumps(document, indent=2) + "\n",
    }
