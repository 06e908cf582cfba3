"""The CDK app: ``cdk synth`` / ``cdk deploy`` run ``python -m cdk.app`` (see ``cdk.json``).

Context (``cdk.json`` or ``-c key=value``):

- ``github_repository``: ``owner/name`` of the fork whose issues drive the pipeline (required
  to deploy; synth uses a placeholder);
- ``aws:cdk:bundling-stacks``: ``[]`` skips bundling the Lambda code (the tests).

cdk-nag's AwsSolutions checks run on every synth; a finding that is not acknowledged in code
with its reason fails it.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from cdk.storage_stack import StorageStack
from cdk.workflow_stack import WorkflowStack

PLACEHOLDER_REPOSITORY = "owner/repository"


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    """Build the app with both stacks and cdk-nag's AwsSolutions checks.

    Args:
        context: CDK context values, on top of ``cdk.json``'s when run by the CLI.
        outdir: the cloud assembly folder (default ``cdk.out``).

    Returns:
        The app; ``app.synth()`` writes the templates and raises on an unacknowledged finding.
    """
    app = App(context=context or {}, outdir=outdir)
    repository = str(app.node.try_get_context("github_repository") or PLACEHOLDER_REPOSITORY)
    environment = Environment(
        account=app.node.try_get_context("account"), region=app.node.try_get_context("region")
    )
    storage = StorageStack(app, "MlopsStorage", env=environment, description="issue-mlops: data and security")
    WorkflowStack(
        app,
        "MlopsWorkflow",
        storage=storage,
        github_repository=repository,
        env=environment,
        description="issue-mlops: webhook, agents, MCP server and state machine",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def main() -> None:
    """Synthesise the app (the CDK CLI's entry point)."""
    build_app().synth()


if __name__ == "__main__":
    main()
