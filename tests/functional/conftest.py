"""Fixtures of the AWS backend tests: a real moto server over HTTP and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from mcp_server.settings import Settings

#: Training images of the families the AWS tests start jobs for.
SAGEMAKER_IMAGES = {
    "xgboost": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train-xgboost:1",
    "sklearn": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train-sklearn:1",
}
SAGEMAKER_ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 (one per test module), with dummy credentials; yields its URL."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(key, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def sagemaker_settings(moto_endpoint: str) -> Settings:
    """AWS settings whose SageMaker calls go to the moto server."""
    return Settings(
        home=Path("/nonexistent"),
        backend="aws",
        allow_write=True,
        s3_bucket="mlops-bucket",
        sagemaker_role_arn=SAGEMAKER_ROLE,
        training_images=SAGEMAKER_IMAGES,
        aws_endpoint_url=moto_endpoint,
    )
