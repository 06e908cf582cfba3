"""One issue through the whole workflow with ``MLOPS_BACKEND=aws``, against a moto server.

Run as ``python -m tests.aws_world ISSUE_NUMBER ISSUE_FILE HOME [--fail-training] [--deploy
[--monitor]]`` with ``GITHUB_API_URL`` pointing at a GitHub REST server (the tests' fake);
prints one JSON object: the execution's status, its output, the S3 keys written, the model
packages, the SNS messages (and the monitoring execution's).
It runs in its own process because moto's backends and the local engine are process-global.

What is real: the state machine definition is the one the CDK app synthesises (its
``DefinitionString``, with the local function ARNs substituted as CloudFormation substitutes the
deployed ones); tasks go to the agents; every backend is the AWS one, on moto's S3, SageMaker,
DynamoDB and SNS; GitHub is spoken to over HTTP. The only fake is what moto cannot do, at the
edge: a SageMaker job. When the MCP server's client creates a training or processing job, this
script does what SageMaker would: it downloads the job's inputs from S3, runs the image's
program under the same contract (``training_containers``), uploads ``model.tar.gz`` or the output
folder to the job's S3 output, and, for a training program that fails, records the job as
``Failed`` with its ``FailureReason`` in moto (SageMaker's own fields). With ``--monitor``, the
endpoint's data capture (which moto's endpoints do not produce) is written with the inference
server's capture writer and uploaded where SageMaker puts it, and the monitoring workflow (the
synthesised ``mlops-monitoring``) runs on it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT, REGION = "123456789012", "us-east-1"
BUCKET, TABLE, TOPIC = "mlops-artifacts-e2e", "mlops-state", "mlops-runs"
IMAGES = {  # one image per container folder with a Dockerfile, as the stack has one repository each
    path.parent.name: f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlops-{path.parent.name}:latest"
    for path in sorted((ROOT / "training_containers").glob("*/Dockerfile"))
}


def synthesised_definition(outdir: Path, name: str = "mlops-runs") -> str:
    """A state machine's definition in the synthesised template, substitutions applied locally."""
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from cdk.app import build_app
    from statemachine.engine import substitute
    from statemachine.functions import local_substitutions

    if not (outdir / "MlopsWorkflow.template.json").is_file():
        context = {"aws:cdk:bundling-stacks": [], "github_repository": "acme/models"}
        build_app(context, outdir=str(outdir)).synth()
    template = json.loads((outdir / "MlopsWorkflow.template.json").read_text())
    [machine] = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and r["Properties"]["StateMachineName"] == name
    ]
    definition = machine["Properties"]["DefinitionString"]
    if isinstance(definition, dict):  # Fn::Join of literal parts
        separator, parts = definition["Fn::Join"]
        definition = separator.join(parts)
    return substitute(definition, local_substitutions())


class SageMakerJobs:
    """Plays SageMaker's part for the jobs created through one client (see the module)."""

    def __init__(self, s3: Any, fail_training: bool) -> None:
        self.s3 = s3
        self.fail_training = fail_training
        self.failures: dict[str, str] = {}
        self.runs: list[str] = []

    def training(self, params: dict[str, Any], **_: Any) -> None:
        from tests.sagemaker_jobs import download_prefix

        name = params["TrainingJobName"]
        family = params["AlgorithmSpecification"]["TrainingImage"].rsplit("/mlops-", 1)[1].split(":")[0]
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            channels = []
            for channel in params.get("InputDataConfig", []):
                channels.append(channel["ChannelName"])
                source = channel["DataSource"]["S3DataSource"]["S3Uri"]
                download_prefix(self.s3, source, root / "input" / "data" / channel["ChannelName"])
            config = root / "input" / "config"
            config.mkdir(parents=True)
            hyperparameters = dict(params.get("HyperParameters", {}))
            if self.fail_training:
                hyperparameters["_target"] = json.dumps("no_such_column")
            (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
            env = {
                **os.environ,
                "MLOPS_OPT_ML": str(root),
                "SM_MODEL_DIR": str(root / "model"),
                "SM_CHANNELS": json.dumps(sorted(channels)),
                **{f"SM_CHANNEL_{c.upper()}": str(root / "input" / "data" / c) for c in channels},
            }
            subprocess.run(
                [sys.executable, "-m", f"training_containers.{family}.train"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                timeout=600,
            )
            failure = root / "output" / "failure"
            if failure.is_file():
                self.failures[name] = failure.read_text().strip().split("\n\n", 1)[0][:1024]
            else:
                buffer = io.BytesIO()
                with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
                    for path in sorted((root / "model").iterdir()):
                        bundle.add(path, arcname=path.name)
                output = params["OutputDataConfig"]["S3OutputPath"].rstrip("/")
                bucket, _, prefix = output.removeprefix("s3://").partition("/")
                self.s3.put_object(
                    Bucket=bucket, Key=f"{prefix}/{name}/output/model.tar.gz", Body=buffer.getvalue()
                )
        self.runs.append(name)

    def training_created(self, params: dict[str, Any], **_: Any) -> None:
        """After moto recorded the job: a failed program makes it Failed, as SageMaker would."""
        name = params["TrainingJobName"]
        if name in self.failures:
            from moto.sagemaker.models import sagemaker_backends

            job = sagemaker_backends[ACCOUNT][REGION].training_jobs[name]
            job.training_job_status = "Failed"
            job.secondary_status = "Failed"
            job.failure_reason = f"AlgorithmError: {self.failures[name]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("issue", type=int)
    parser.add_argument("issue_file")
    parser.add_argument("home")
    parser.add_argument("--fail-training", action="store_true")
    parser.add_argument("--deploy", action="store_true", help="add a deployment to a SageMaker endpoint")
    parser.add_argument(
        "--monitor",
        action="store_true",
        help="also watch the endpoint: capture shifted traffic, run the monitor",
    )
    args = parser.parse_args()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        os.environ[key] = value
    import boto3
    from moto.server import ThreadedMotoServer

    from mcp_server.backends.aws.waiting import table_definition
    from mcp_server.settings import Settings
    from statemachine.local_runtime import LocalRuntime
    from statemachine.webhooks import issue_payload, read_issue_file
    from tests.sagemaker_jobs import run_processing_jobs

    home = Path(args.home)
    definition = home / "synthesised.asl.json"
    home.mkdir(parents=True, exist_ok=True)
    definition.write_text(synthesised_definition(home / "cdk.out"))
    monitoring_definition = home / "synthesised-monitoring.asl.json"
    monitoring_definition.write_text(synthesised_definition(home / "cdk.out", "mlops-monitoring"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=endpoint)

    client("s3").create_bucket(Bucket=BUCKET)
    client("dynamodb").create_table(**table_definition(TABLE))
    topic = client("sns").create_topic(Name=TOPIC)["TopicArn"]
    queue = client("sqs").create_queue(QueueName="mlops-runs-inbox")["QueueUrl"]
    queue_arn = client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    settings = Settings.from_env(
        environ={},
        home=home / "workspace",
        backend="aws",
        s3_bucket=BUCKET,
        state_table=TABLE,
        sns_topic_arn=topic,
        sagemaker_role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-sagemaker",
        training_images=IMAGES,
        aws_endpoint_url=endpoint,
        github_token="ghp_test_token_123",
        github_repository="acme/models",
        github_api_url=os.environ["GITHUB_API_URL"],
        poll_interval_s=1,
        # as the stack sets them: the engine names its monitoring machine as the stack does
        monitoring_state_machine_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:mlops-monitoring",
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-scheduler",
    )
    title, body = read_issue_file(Path(args.issue_file))
    if args.deploy:  # the spec's YAML block gains a deployment section
        body = body.replace(
            "\n```\n",
            "\ndeployment:\n  target: sagemaker_endpoint\n  endpoint_name: wine\n  data_capture: 20\n"
            + ("monitoring:\n  drift_psi: 0.2\n  alerts:\n    sns: true\n" if args.monitor else "")
            + "```\n",
            1,
        )
    started = time.perf_counter()
    monitoring: dict[str, Any] = {}
    with LocalRuntime(
        settings,
        ROOT,
        command="aws-e2e",
        definition_path=definition,
        monitoring_definition_path=monitoring_definition,
    ) as runtime:
        backends = runtime.backends
        assert backends is not None
        jobs = SageMakerJobs(backends.evaluation._s3, args.fail_training)  # type: ignore[attr-defined]
        training_client = backends.training._client  # type: ignore[attr-defined]
        training_client.meta.events.register(
            "provide-client-params.sagemaker.CreateTrainingJob", jobs.training
        )
        training_client.meta.events.register("after-call.sagemaker.CreateTrainingJob", _after(jobs))
        processing = run_processing_jobs(backends.evaluation._sagemaker, backends.evaluation._s3)  # type: ignore[attr-defined]
        run_processing_jobs(backends.data._sagemaker, backends.data._s3, processing)  # type: ignore[attr-defined]
        payload = issue_payload(
            args.issue,
            title,
            body,
            "alice",
            "OWNER",
            repository="acme/models",
            html_url=f"https://github.example/acme/models/issues/{args.issue}",
        )
        answer = runtime.deliver("issues", payload)
        record = runtime.wait(answer["execution_arn"], timeout_s=600, until_waiting=False)
        if args.monitor and record.get("status") == "SUCCEEDED":
            run_processing_jobs(backends.monitoring._sagemaker, backends.monitoring._s3, processing)  # type: ignore[attr-defined]
            capture_shifted_traffic(home / "capture", client("s3"))
            time.sleep(1.1)  # a window ends at a whole second (exclusive): past the capture's second
            result = runtime.monitor("wine", requested_by="aws-e2e", timeout_s=300)
            scheduler = client("scheduler")
            monitoring = {
                "status": result["status"],
                "error": result["error"],
                "cause": result["cause"],
                "output": result["output"],
                "schedules": [s["Name"] for s in scheduler.list_schedules()["Schedules"]],
                "dashboards": [
                    d["DashboardName"] for d in client("cloudwatch").list_dashboards()["DashboardEntries"]
                ],
            }
    wall_s = time.perf_counter() - started
    s3 = client("s3")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    sagemaker = client("sagemaker")
    packages = []
    for group in sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        for summary in sagemaker.list_model_packages(ModelPackageGroupName=group["ModelPackageGroupName"])[
            "ModelPackageSummaryList"
        ]:
            described = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            packages.append(
                {
                    "group": described["ModelPackageGroupName"],
                    "version": described["ModelPackageVersion"],
                    "status": described["ModelApprovalStatus"],
                    "metadata": described.get("CustomerMetadataProperties", {}),
                    "model_data_url": described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
                }
            )
    endpoints = []
    for summary in sagemaker.list_endpoints()["Endpoints"]:
        described = sagemaker.describe_endpoint(EndpointName=summary["EndpointName"])
        config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        endpoints.append({"endpoint": described, "config": config})
    messages = (
        client("sqs")
        .receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        .get("Messages", [])
    )
    print(
        json.dumps(
            {
                "status": record.get("status"),
                "error": record.get("error"),
                "cause": record.get("cause"),
                "output": record.get("output"),
                "wall_s": round(wall_s, 2),
                "s3_keys": sorted(keys),
                "model_packages": packages,
                "endpoints": endpoints,
                "sns": [json.loads(m["Body"]) for m in messages],
                "training_runs": jobs.runs,
                "processing_runs": processing.runs,
                "processing_logs": processing.logs,
                "monitoring": monitoring,
            },
            default=str,
        )
    )
    server.stop()


def capture_shifted_traffic(folder: Path, s3: Any, count: int = 120) -> None:
    """Write what SageMaker's data capture would for ``count`` wine requests with alcohol + 3.

    The records are written by the inference server's own capture writer, then uploaded under
    ``capture/wine/`` as SageMaker lays its capture out on S3.
    """
    from sklearn.datasets import load_wine

    from training_containers.inference.capture import CaptureWriter

    data = load_wine()
    writer = CaptureWriter(folder, "wine", 100)
    for i in range(count):
        row = data.data[i % len(data.data)].tolist()
        row[0] += 3.0
        body = json.dumps({"instances": [row]}).encode()
        answer = json.dumps({"predictions": [str(data.target_names[data.target[i % len(data.target)]])]})
        writer.offer("v1", "application/json", body, "application/json", answer.encode(), f"w-{i}")
    writer.close()
    for path in sorted(folder.rglob("*.jsonl")):
        s3.put_object(
            Bucket=BUCKET, Key=f"capture/{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
        )


def _after(jobs: SageMakerJobs) -> Any:
    def after(http_response: Any, parsed: Any, model: Any, context: Any, **kwargs: Any) -> None:
        params = kwargs.get("params") or {}
        name = params.get("TrainingJobName") or (jobs.runs[-1] if jobs.runs else "")
        jobs.training_created({"TrainingJobName": name})

    return after


if __name__ == "__main__":
    main()
