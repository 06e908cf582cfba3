"""Registry tools: register_model and set_champion."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import RegisteredModel, RegistrationRequest
from mcp_server.settings import Settings
from mcp_server.tools.guard import WRITE, guarded


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the registry tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def register_model(
        request: Annotated[RegistrationRequest, Field(description="model, metrics and lineage")],
    ) -> RegisteredModel:
        """Register a trained model as a new version of its model package group.

        The version carries its lineage (issue, execution, training job, spec hash, data
        version), its metrics, and a semantic version (major: model type, algorithm or feature
        schema changed; minor: hyperparameters or preprocessing; patch: data only). The alias
        ``challenger`` moves to it. Registering the same training job twice returns the first
        version.

        Returns:
            RegisteredModel: name, version, semantic_version, aliases, model_uri.

        Raises:
            RegistryError: the model cannot be read or registered.
        """
        return backends.registry.register_model(request)

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def set_champion(
        model_name: Annotated[str, Field(min_length=1, max_length=63, description="the registered model")],
        version: Annotated[str, Field(min_length=1, max_length=20, description="its version number")],
    ) -> RegisteredModel:
        """Mark a version as the champion: the version its endpoint serves at 100 % of traffic.

        Locally MLflow's ``champion`` alias moves to it; on SageMaker its model package is approved.

        Returns:
            RegisteredModel: the version, with ``champion`` among its aliases.

        Raises:
            NotFoundError: no such version.
            RegistryError: the registry refused it.
        """
        return backends.registry.set_champion(model_name, version)
