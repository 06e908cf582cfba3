"""What a SageMaker job would do, for tests against moto, whose jobs are records only.

moto accepts ``CreateProcessingJob`` and reports the job ``Completed`` at once, without running
anything. ``run_processing_jobs(client)`` hooks the client's ``CreateProcessingJob`` answer and
does what SageMaker would: download each ``S3Input`` under a temporary ``/opt/ml/processing``,
run the container's entrypoint program as a process under the same contract
(``MLOPS_PROCESSING_ROOT``), and upload the output folder to its ``S3Output``. It is the only
fake in these tests, at the edge: the program, the files and S3 are real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp_server.backends.aws.s3 import split_s3_uri
from tests.conftest import REPO_ROOT

ROOT = "/opt/ml/processing"


def download_prefix(s3: Any, uri: str, target: Path) -> int:
    """Download every object whose key starts with ``uri``'s into ``target``; return the count.

    As SageMaker lays out an ``S3Prefix`` input: each key keeps its path below the prefix's last
    ``/``, so ``s3://b/loans/x.csv`` lands as ``target/x.csv`` (and ``loans/x.csv.gz``, which
    shares the prefix, beside it), and ``s3://b/splits/train/`` gives ``target/data.parquet``.
    """
    bucket, prefix = split_s3_uri(uri)
    folder = prefix[: prefix.rfind("/") + 1]
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(folder) :]
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            count += 1
    return count


def upload_folder(s3: Any, folder: Path, uri: str) -> None:
    """Upload every file under ``folder`` to ``uri`` (keys relative to the folder)."""
    bucket, prefix = split_s3_uri(uri)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


class ProcessingJobs:
    """Runs each processing job created through a client; ``runs`` lists the job names run."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.runs: list[str] = []
        self.logs: dict[str, str] = {}

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            for item in params.get("ProcessingInputs", []):
                source = item["S3Input"]
                download_prefix(self.s3, source["S3Uri"], root / source["LocalPath"].removeprefix(ROOT + "/"))
            entrypoint = params["AppSpecification"]["ContainerEntrypoint"]
            program = [sys.executable, *entrypoint[1:]] if entrypoint[0].startswith("python") else entrypoint
            env = {**os.environ, **params.get("Environment", {}), "MLOPS_PROCESSING_ROOT": str(root)}
            done = subprocess.run(
                program, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
            )
            self.logs[params["ProcessingJobName"]] = done.stdout + done.stderr
            for output in params["ProcessingOutputConfig"]["Outputs"]:
                local = root / output["S3Output"]["LocalPath"].removeprefix(ROOT + "/")
                upload_folder(self.s3, local, output["S3Output"]["S3Uri"])
        self.runs.append(params["ProcessingJobName"])


def run_processing_jobs(sagemaker: Any, s3: Any, jobs: ProcessingJobs | None = None) -> ProcessingJobs:
    """Make ``sagemaker``'s ``CreateProcessingJob`` calls run their job (see the module).

    Args:
        sagemaker: the client whose jobs to run.
        s3: the client the jobs read and write through.
        jobs: the runner to use (one for several clients), else a new one.
    """
    jobs = jobs or ProcessingJobs(s3)
    sagemaker.meta.events.register(
        "provide-client-params.sagemaker.CreateProcessingJob",
        lambda params, **kwargs: jobs(params, **kwargs),
    )
    return jobs
