"""Configuration of the MCP server and its backends: one frozen object built at start-up.

Nothing reads the environment at import time; ``Settings.from_env`` is called once by the
entry point (CLI, Lambda handler, test fixture) and the object is passed down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: Workspace folder used when ``MLOPS_HOME`` is unset (relative to the current directory).
DEFAULT_HOME = ".mlops"


@dataclass(frozen=True)
class Settings:
    """Everything the backends need to know about where they run.

    Attributes:
        home: the local workspace (``.mlops/``): MLflow store, jobs, datasets, records.
        backend: ``local`` (subprocess jobs, MLflow, git) or ``aws`` (SageMaker, S3, SNS).
        allow_write: whether tools that change the world (start jobs, register, comment,
            commit, notify) may run.
        job_memory_limit_mb: address-space limit of each local training job, in MiB.
        poll_interval_s: seconds the workflow waits between two training-job status checks.
        github_token / github_repository: when both are set, issues and comments go to GitHub
            through PyGithub instead of the local issue store.
        github_api_url: GitHub's REST API base URL (GitHub Enterprise, or a test server).
        history_repository: git repository whose ``training_history/`` receives local records;
            defaults to ``home / "repository"``.
        aws_region, s3_bucket, sagemaker_role_arn, training_images, sns_topic_arn: AWS mode.
        aws_endpoint_url: an endpoint override for every AWS client (tests against moto).
        state_table: the DynamoDB table of waiting runs and their task tokens (AWS mode,
            ``MLOPS_STATE_TABLE``).
        data_roots: folders, besides the project's ``data/`` and ``examples/data/``, whose files
            ``file://`` dataset sources may read (``MLOPS_DATA_ROOTS``, separated by ``:``).
        monitoring_state_machine_arn: the monitoring workflow EventBridge Scheduler starts
            (AWS, ``MLOPS_MONITORING_STATE_MACHINE_ARN``).
        scheduler_role_arn: the role EventBridge Scheduler assumes to start it
            (``MLOPS_SCHEDULER_ROLE_ARN``).
        slack_webhook_url: the Slack incoming webhook alerts go to (``MLOPS_SLACK_WEBHOOK_URL``;
            on AWS read from Secrets Manager at start, see ``mcp_server.secrets``).
        smtp_host, smtp_port, smtp_user, smtp_password, smtp_sender, smtp_starttls: the SMTP
            server e-mail alerts go through (``MLOPS_SMTP_*``; the password from Secrets
            Manager on AWS). Port 587 with STARTTLS by default.
    """

    home: Path
    backend: Literal["local", "aws"] = "local"
    allow_write: bool = False
    job_memory_limit_mb: int = 8192
    poll_interval_s: int = 1
    github_token: str | None = None
    github_repository: str | None = None
    github_api_url: str = "https://api.github.com"
    history_repository: Path | None = None
    aws_region: str = "us-east-1"
    s3_bucket: str | None = None
    sagemaker_role_arn: str | None = None
    training_images: dict[str, str] = field(default_factory=dict)
    sns_topic_arn: str | None = None
    aws_endpoint_url: str | None = None
    state_table: str | None = None
    data_roots: tuple[Path, ...] = ()
    monitoring_state_machine_arn: str | None = None
    scheduler_role_arn: str | None = None
    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "issue-mlops@localhost"
    smtp_starttls: bool = True

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking and registry URI: a SQLite database in the workspace."""
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        """Where MLflow stores run artifacts locally."""
        return self.home / "mlartifacts"

    @property
    def history_repo_path(self) -> Path:
        """The git repository that receives training history commits locally."""
        return self.history_repository or self.home / "repository"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``MLOPS_*``, ``GITHUB_*`` and ``AWS_*`` variables.

        Args:
            environ: the environment to read (default ``os.environ``).
            **overrides: field values that win over the environment.

        Returns:
            The settings; ``home`` is made absolute.
        """
        env = dict(os.environ if environ is None else environ)
        images = {
            key.removeprefix("MLOPS_TRAINING_IMAGE_").lower(): value
            for key, value in env.items()
            if key.startswith("MLOPS_TRAINING_IMAGE_")
        }
        values: dict[str, object] = {
            "home": Path(env.get("MLOPS_HOME", DEFAULT_HOME)).absolute(),
            "backend": env.get("MLOPS_BACKEND", "local"),
            "allow_write": env.get("MLOPS_ALLOW_WRITE", "").lower() in ("1", "true", "yes"),
            "job_memory_limit_mb": int(env.get("MLOPS_JOB_MEMORY_LIMIT_MB", "8192")),
            "poll_interval_s": int(env.get("MLOPS_POLL_INTERVAL_S", "1")),
            "github_token": env.get("GITHUB_TOKEN") or None,
            "github_repository": env.get("GITHUB_REPOSITORY") or None,
            "github_api_url": env.get("GITHUB_API_URL", "https://api.github.com"),
            "history_repository": Path(env["MLOPS_HISTORY_REPOSITORY"]).absolute()
            if env.get("MLOPS_HISTORY_REPOSITORY")
            else None,
            "aws_region": env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            "s3_bucket": env.get("MLOPS_BUCKET") or None,
            "sagemaker_role_arn": env.get("MLOPS_SAGEMAKER_ROLE_ARN") or None,
            "training_images": images,
            "sns_topic_arn": env.get("MLOPS_SNS_TOPIC_ARN") or None,
            "aws_endpoint_url": env.get("MLOPS_AWS_ENDPOINT_URL") or None,
            "state_table": env.get("MLOPS_STATE_TABLE") or None,
            "data_roots": tuple(
                Path(root).absolute() for root in env.get("MLOPS_DATA_ROOTS", "").split(os.pathsep) if root
            ),
            "monitoring_state_machine_arn": env.get("MLOPS_MONITORING_STATE_MACHINE_ARN") or None,
            "scheduler_role_arn": env.get("MLOPS_SCHEDULER_ROLE_ARN") or None,
            "slack_webhook_url": env.get("MLOPS_SLACK_WEBHOOK_URL") or None,
            "smtp_host": env.get("MLOPS_SMTP_HOST") or None,
            "smtp_port": int(env.get("MLOPS_SMTP_PORT") or "587"),
            "smtp_user": env.get("MLOPS_SMTP_USER") or None,
            "smtp_password": env.get("MLOPS_SMTP_PASSWORD") or None,
            "smtp_sender": env.get("MLOPS_SMTP_SENDER") or "issue-mlops@localhost",
            "smtp_starttls": env.get("MLOPS_SMTP_STARTTLS", "true").lower() not in ("0", "false", "no"),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
