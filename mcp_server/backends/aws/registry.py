"""The SageMaker Model Registry: one model package group per model, one model package per version.

A registration creates a versioned model package in the group ``request.model_name`` (the group
is created on first use) with:

- ``InferenceSpecification``: the family's image (``settings.training_images``; the training
  containers also serve, under SageMaker's inference contract) and the training job's
  ``model.tar.gz``;
- ``ModelApprovalStatus`` ``PendingManualApproval``: the newest pending package is the
  *challenger*; approving one (``/approve``, or the console) makes it the *champion*;
- ``CustomerMetadataProperties``: the lineage (issue, execution, training job, spec hash, data
  version, dataset), the fingerprint the semantic version is computed from
  (``core.versioning``; the feature schema as its SHA-256, since a value holds at most 256
  characters), the metrics as ``metric.<name>``, and ``semantic_version``;
- ``MetadataProperties`` (``GeneratedBy`` the execution, ``Repository`` the issue, ``CommitId``
  the spec hash) and, with a drift baseline on S3, ``ModelMetrics.ModelDataQuality``.

Versions are assigned without a lock: SageMaker numbers the packages of a group atomically, so a
package's semantic version is computed from its immediate predecessor (``version - 1``) once
that one has its own, which makes concurrent registrations of one model chain their semantic
versions instead of colliding. A registration that crashed between the two steps is finished by
the next call for the same job: registering is idempotent per (model name, training job).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any

from botocore.exceptions import ClientError

from mcp_server.backends.aws.clients import aws_client, error_code, translated
from mcp_server.backends.base import RegistryBackend
from mcp_server.core.models import RegisteredModel, RegistrationRequest
from mcp_server.core.spec.catalog import FAMILY_BY_ALGORITHM
from mcp_server.core.versioning import ModelFingerprint, fingerprint_from, next_semantic_version
from mcp_server.errors import NotFoundError, RegistryError, TransientError
from mcp_server.settings import Settings

CHALLENGER = "challenger"
CHAMPION = "champion"
PENDING = "PendingManualApproval"
SEMANTIC_VERSION = "semantic_version"
JOB_NAME = "job_name"
#: SageMaker's limits on CustomerMetadataProperties: 50 entries, keys 128 and values 256 characters.
MAX_PROPERTIES, MAX_KEY, MAX_VALUE = 50, 128, 256
#: How many of a group's newest packages are searched for the job's own (idempotency).
SEARCH_DEPTH = 100


def schema_digest(fingerprint: ModelFingerprint) -> ModelFingerprint:
    """Return ``fingerprint`` with its feature schema replaced by ``("sha256:<hex>",)``.

    Two digested fingerprints compare as the originals do (same names in the same order give the
    same digest), and the digest fits a 256-character metadata value whatever the feature count.
    """
    if len(fingerprint.feature_schema) == 1 and fingerprint.feature_schema[0].startswith("sha256:"):
        return fingerprint
    canonical = json.dumps(list(fingerprint.feature_schema), separators=(",", ":"))
    digest = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    return ModelFingerprint(
        model_type=fingerprint.model_type,
        algorithm=fingerprint.algorithm,
        feature_schema=(digest,),
        training_config_hash=fingerprint.training_config_hash,
        data_version=fingerprint.data_version,
    )


def customer_metadata(request: RegistrationRequest) -> dict[str, str]:
    """Return the package's ``CustomerMetadataProperties`` (without ``semantic_version``).

    Values are cut to 256 characters; metrics fill the entries left under SageMaker's 50, in
    name order.
    """
    lineage = request.lineage
    properties = {
        JOB_NAME: lineage.job_name,
        "execution_name": lineage.execution_name,
        "issue_number": str(lineage.issue_number),
        "issue_url": lineage.issue_url,
        "spec_hash": lineage.spec_hash,
        "dataset_id": lineage.dataset_id,
        **schema_digest(fingerprint_from(request)).to_tags(),
    }
    room = MAX_PROPERTIES - len(properties) - 1  # one left for semantic_version
    for name in sorted(request.metrics)[:room]:
        properties[f"metric.{name}"[:MAX_KEY]] = repr(float(request.metrics[name]))
    return {key: value[:MAX_VALUE] for key, value in properties.items() if value}


class SageMakerRegistryBackend(RegistryBackend):
    """Registers models as versioned model packages in the SageMaker Model Registry.

    Args:
        settings: ``training_images`` (family -> image URI), ``aws_region``, ``aws_endpoint_url``.
        sagemaker_client: a boto3 SageMaker client to use instead of building one.
        predecessor_wait_s: how long a registration waits for the package before it to get its
            semantic version (a concurrent registration finishing), in seconds.
        poll_s: seconds between two looks at that package.
    """

    def __init__(
        self,
        settings: Settings,
        sagemaker_client: Any = None,
        predecessor_wait_s: float = 60.0,
        poll_s: float = 0.5,
    ) -> None:
        self._settings = settings
        self._client = sagemaker_client or aws_client(settings, "sagemaker")
        self._wait_s = predecessor_wait_s
        self._poll_s = poll_s

    def register_model(self, request: RegistrationRequest) -> RegisteredModel:
        """Create the job's model package, or return (finishing it if needed) the one it created.

        Args:
            request: ``model_uri`` is the training job's ``s3://…/model.tar.gz``; the metrics,
                lineage and fingerprint fields go to the package's metadata.

        Returns:
            The version: ``version`` is SageMaker's ``ModelPackageVersion``, ``model_uri`` the
            package ARN, ``aliases`` ``["challenger"]`` while it waits for approval.

        Raises:
            RegistryError: the artifact is not on S3, the family has no image, or SageMaker
                refused a call (``ValidationException``, a missing permission).
            TransientError: SageMaker throttled or was unreachable, or the previous version did
                not get its semantic version within ``predecessor_wait_s``; retry.
        """
        name = request.model_name
        what = f"register {name} from job {request.lineage.job_name}"
        with translated(what, "SageMaker", RegistryError):
            self._ensure_group(name)
            package = self._package_of_job(name, request.lineage.job_name)
            if package is None:
                package = self._describe(self._create_package(request))
            if SEMANTIC_VERSION not in package.get("CustomerMetadataProperties", {}):
                package = self._assign_semantic_version(package, request)
        return _registered(package)

    # -----------------------------------------------------------------------------------------

    def _ensure_group(self, name: str) -> None:
        try:
            self._client.describe_model_package_group(ModelPackageGroupName=name)
            return
        except ClientError as err:
            if error_code(err) not in ("ValidationException", "ResourceNotFound"):
                raise
        with contextlib.suppress(ClientError):  # created meanwhile
            self._client.create_model_package_group(
                ModelPackageGroupName=name,
                ModelPackageGroupDescription=(
                    "Trained by issue-mlops from GitHub issues; each package's metadata carries its "
                    "lineage, metrics and semantic version."
                ),
            )
        self._client.describe_model_package_group(ModelPackageGroupName=name)

    def _package_of_job(self, name: str, job_name: str) -> dict[str, Any] | None:
        """The newest package of the group created for ``job_name`` (None when there is none)."""
        pages = self._client.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=name, SortBy="CreationTime", SortOrder="Descending"
        )
        searched = 0
        for page in pages:
            for summary in page.get("ModelPackageSummaryList", []):
                package = self._describe(summary["ModelPackageArn"])
                if package.get("CustomerMetadataProperties", {}).get(JOB_NAME) == job_name:
                    return package
                searched += 1
                if searched >= SEARCH_DEPTH:
                    return None
        return None

    def _create_package(self, request: RegistrationRequest) -> str:
        if not request.model_uri.startswith("s3://"):
            raise RegistryError(
                f"the SageMaker Model Registry needs the training job's s3:// model artifact, got "
                f"{request.model_uri[:200]!r}"
            )
        family = FAMILY_BY_ALGORITHM.get(request.algorithm)
        image = self._settings.training_images.get(family or "")
        if image is None:
            raise RegistryError(
                f"no image for the {family or request.algorithm!r} family to serve the model; set "
                f"MLOPS_TRAINING_IMAGE_{(family or 'FAMILY').upper()} to its ECR image URI"
            )
        lineage = request.lineage
        arguments: dict[str, Any] = {
            "ModelPackageGroupName": request.model_name,
            "ModelPackageDescription": (
                f"{request.algorithm} from issue #{lineage.issue_number}, execution {lineage.execution_name}"
            )[:1000],
            "InferenceSpecification": {
                "Containers": [{"Image": image, "ModelDataUrl": request.model_uri}],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            "ModelApprovalStatus": PENDING,
            "MetadataProperties": {
                "GeneratedBy": lineage.execution_name[:1024],
                "Repository": (lineage.issue_url or f"issue #{lineage.issue_number}")[:1024],
                "CommitId": lineage.spec_hash[:1024],
                "ProjectId": str(lineage.issue_number),
            },
            "CustomerMetadataProperties": customer_metadata(request),
            "ClientToken": hashlib.sha256(f"{request.model_name}/{lineage.job_name}".encode()).hexdigest()[
                :36
            ],
            "Tags": [
                {"Key": "issue", "Value": str(lineage.issue_number)},
                {"Key": "execution", "Value": lineage.execution_name[:256]},
            ],
        }
        if request.baseline_uri and request.baseline_uri.startswith("s3://"):
            arguments["ModelMetrics"] = {
                "ModelDataQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": request.baseline_uri}
                }
            }
        return str(self._client.create_model_package(**arguments)["ModelPackageArn"])

    def _assign_semantic_version(
        self, package: dict[str, Any], request: RegistrationRequest
    ) -> dict[str, Any]:
        """Compute the package's semantic version from its predecessor's and store it."""
        previous, previous_version = self._predecessor(package)
        current = schema_digest(fingerprint_from(request))
        semantic = next_semantic_version(previous, previous_version, current)
        properties = {**package.get("CustomerMetadataProperties", {}), SEMANTIC_VERSION: semantic}
        self._client.update_model_package(
            ModelPackageArn=package["ModelPackageArn"],
            ModelApprovalStatus=package.get("ModelApprovalStatus") or PENDING,
            CustomerMetadataProperties=properties,
        )
        return self._describe(package["ModelPackageArn"])

    def _predecessor(self, package: dict[str, Any]) -> tuple[ModelFingerprint | None, str | None]:
        """The fingerprint and semantic version of the newest earlier package that has ours.

        Packages without our metadata (registered by hand) are skipped; one of ours still
        without a semantic version (a registration in progress) is waited for.

        Raises:
            TransientError: a predecessor of ours has no semantic version after the wait.
        """
        arn, number = package["ModelPackageArn"], int(package["ModelPackageVersion"])
        prefix = arn.rsplit("/", 1)[0]
        for earlier in range(number - 1, 0, -1):
            deadline = time.monotonic() + self._wait_s
            while True:
                properties = self._describe(f"{prefix}/{earlier}").get("CustomerMetadataProperties", {})
                if SEMANTIC_VERSION in properties:
                    fingerprint = ModelFingerprint.from_tags(properties)
                    return (schema_digest(fingerprint) if fingerprint else None), properties[SEMANTIC_VERSION]
                if JOB_NAME not in properties:
                    break  # not ours: look further back
                if time.monotonic() >= deadline:
                    raise TransientError(
                        f"version {earlier} of {package['ModelPackageGroupName']} has no semantic version "
                        f"after {self._wait_s:g} s (its registration may have crashed); retry"
                    )
                time.sleep(self._poll_s)
        return None, None

    def set_champion(self, model_name: str, version: str) -> RegisteredModel:
        """Approve the version's model package (see ``RegistryBackend.set_champion``).

        Raises:
            NotFoundError: the group has no package with that version number.
            RegistryError: SageMaker refused the update.
        """
        with translated(f"approve {model_name} version {version}", "SageMaker", RegistryError):
            paginator = self._client.get_paginator("list_model_packages")
            arn = next(
                (
                    summary["ModelPackageArn"]
                    for page in paginator.paginate(ModelPackageGroupName=model_name)
                    for summary in page["ModelPackageSummaryList"]
                    if str(summary.get("ModelPackageVersion")) == str(version)
                ),
                None,
            )
            if arn is None:
                raise NotFoundError(f"no version {version} of model package group {model_name}")
            # The properties are sent again unchanged: SageMaker keeps them anyway, and moto's
            # UpdateModelPackage would otherwise clear them.
            properties = self._describe(arn).get("CustomerMetadataProperties", {})
            self._client.update_model_package(
                ModelPackageArn=arn, ModelApprovalStatus="Approved", CustomerMetadataProperties=properties
            )
            return _registered(self._describe(arn))

    def _describe(self, arn: str) -> dict[str, Any]:
        return dict(self._client.describe_model_package(ModelPackageName=arn))


def _registered(package: dict[str, Any]) -> RegisteredModel:
    properties = package.get("CustomerMetadataProperties", {})
    return RegisteredModel(
        name=package["ModelPackageGroupName"],
        version=str(package["ModelPackageVersion"]),
        semantic_version=properties[SEMANTIC_VERSION],
        aliases=[CHALLENGER]
        if package.get("ModelApprovalStatus") == PENDING
        else [CHAMPION]
        if package.get("ModelApprovalStatus") == "Approved"
        else [],
        model_uri=package["ModelPackageArn"],
        run_id=None,
    )
