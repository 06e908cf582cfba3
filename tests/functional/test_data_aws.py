"""S3DatasetBackend against a moto server: the local preparation, with its artifacts on S3."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from mcp_server.backends.aws.data import S3DatasetBackend
from mcp_server.backends.local.data import LocalDatasetBackend
from mcp_server.errors import DatasetError
from mcp_server.settings import Settings
from tests.conftest import REPO_ROOT
from tests.functional.test_data_local import make_spec, read_split

BUCKET = "mlops-data-bucket"
LOAN = REPO_ROOT / "examples" / "data" / "loan_approval.csv"


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> Any:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket="team-data")
    client.put_object(Bucket="team-data", Key="loans/loan_approval.csv", Body=LOAN.read_bytes())
    client.put_object(
        Bucket="team-data", Key="loans/loan_approval.csv.gz", Body=gzip.compress(LOAN.read_bytes())
    )
    frame = pd.read_csv(LOAN)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    client.put_object(Bucket="team-data", Key="loans/loan_approval.parquet", Body=buffer.getvalue())
    return client


@pytest.fixture(scope="module")
def backend(s3: Any, moto_endpoint: str) -> S3DatasetBackend:
    settings = Settings(
        home=Path("/nonexistent"), backend="aws", s3_bucket=BUCKET, aws_endpoint_url=moto_endpoint
    )
    return S3DatasetBackend(settings, s3_client=s3)


def s3_split(s3: Any, uri: str) -> pd.DataFrame:
    key = uri.removeprefix(f"s3://{BUCKET}/") + "data.parquet"
    return pd.read_parquet(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))


def test_the_same_spec_gives_the_local_backends_version_and_splits(
    backend: S3DatasetBackend, s3: Any, tmp_path: Path
) -> None:
    spec = make_spec("sklearn://wine", outliers={"method": "iqr", "factor": 1.5})

    ref = backend.prepare_dataset(spec)
    local = LocalDatasetBackend(Settings(home=tmp_path), base_dir=REPO_ROOT).prepare_dataset(spec)

    assert (ref.dataset_id, ref.data_version) == (local.dataset_id, local.data_version)
    assert ref.split_sizes == local.split_sizes
    assert ref.class_labels == local.class_labels
    assert ref.rows_removed == local.rows_removed
    for name in ("train", "validation", "test"):
        assert ref.splits[name].startswith(f"s3://{BUCKET}/datasets/{ref.dataset_id}/processed/")
        assert ref.splits[name].endswith(f"/{name}/")
        pd.testing.assert_frame_equal(s3_split(s3, ref.splits[name]), read_split(local, name))
    raw = s3.head_object(Bucket=BUCKET, Key=f"datasets/{ref.dataset_id}/raw/data.parquet")
    assert raw["ContentLength"] > 0
    metadata_key = (
        ref.splits["train"].removeprefix(f"s3://{BUCKET}/").removesuffix("train/") + "metadata.json"
    )
    assert (
        json.loads(s3.get_object(Bucket=BUCKET, Key=metadata_key)["Body"].read())["dataset_id"]
        == ref.dataset_id
    )


def test_a_prepared_dataset_is_returned_without_writing_again(backend: S3DatasetBackend, s3: Any) -> None:
    spec = make_spec("sklearn://iris")
    first = backend.prepare_dataset(spec)
    writes: list[str] = []
    s3.meta.events.register("before-call.s3.PutObject", lambda params, **_: writes.append(params["url_path"]))

    again = backend.prepare_dataset(spec)

    assert again == first
    assert writes == []


@pytest.mark.parametrize(
    "key", ["loans/loan_approval.csv", "loans/loan_approval.csv.gz", "loans/loan_approval.parquet"]
)
def test_s3_sources_in_csv_compressed_csv_or_parquet(backend: S3DatasetBackend, key: str) -> None:
    ref = backend.prepare_dataset(make_spec(f"s3://team-data/{key}", target="approved"))

    assert ref.source == f"s3://team-data/{key}"
    assert ref.class_labels == ["no", "yes"]
    assert sum(ref.split_sizes.values()) == ref.rows_raw - sum(ref.rows_removed.values())
    assert ref.feature_types["employment_type"] == "categorical"


def test_bad_sources_are_dataset_errors_that_name_the_fix(backend: S3DatasetBackend) -> None:
    with pytest.raises(DatasetError, match=r"cannot read it \(NoSuchKey\); check the URI"):
        backend.prepare_dataset(make_spec("s3://team-data/loans/missing.csv", target="approved"))
    with pytest.raises(DatasetError, match="AWS mode reads sklearn://NAME and s3://BUCKET/KEY"):
        backend.prepare_dataset(make_spec("file://examples/data/loan_approval.csv", target="approved"))
    spec = make_spec("s3://team-data/loans/loan_approval.csv", target="approved")
    assert spec.dataset is not None
    unchecked = spec.model_copy(  # the spec refuses this; the backend checks again for other callers
        update={
            "dataset": spec.dataset.model_copy(update={"source": "s3://team-data/loans/loan_approval.xlsx"})
        }
    )
    with pytest.raises(DatasetError, match="unsupported file type"):
        backend.prepare_dataset(unchecked)
    with pytest.raises(DatasetError, match=r"'approvd' is not a column .*did you mean 'approved'"):
        backend.prepare_dataset(make_spec("s3://team-data/loans/loan_approval.csv", target="approvd"))
    with pytest.raises(DatasetError, match="set MLOPS_BUCKET"):
        S3DatasetBackend(Settings(home=Path("/x"), backend="aws"))
