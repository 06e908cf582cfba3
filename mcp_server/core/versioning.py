"""Semantic versions of registered models, computed from what changed since the previous version.

Pure: no I/O. the README, "Model versions": every registered model has a registry version and a
semantic version MAJOR.MINOR.PATCH, where

- MAJOR changes when the model type, the algorithm or the feature schema changes
  (a consumer must change how it calls the model);
- MINOR changes when the hyperparameters or the preprocessing change (same interface,
  a differently configured model);
- PATCH changes when only the data changes, and also for a retrain on identical inputs.

The first version of a model is 1.0.0. A ``ModelFingerprint`` holds exactly what those rules
compare; the registry stores it as model-version tags (``to_tags``/``from_tags``) so that the next
registration can compare against the latest version.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from mcp_server.core.models import RegistrationRequest

FIRST_VERSION = "1.0.0"

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")

#: Model-version tag keys that carry a fingerprint.
FINGERPRINT_TAGS: tuple[str, ...] = (
    "model_type",
    "algorithm",
    "feature_schema",
    "training_config_hash",
    "data_version",
)


@dataclass(frozen=True)
class ModelFingerprint:
    """What decides the semantic version bump between two registrations (the README, "Model versions").

    Attributes:
        model_type: e.g. ``supervised_learning``.
        algorithm: e.g. ``xgboost``.
        feature_schema: the model's input feature names, in input order. Reordering counts as
            a schema change: a positional (array) caller would break.
        training_config_hash: 12 hex digits over the hyperparameters and preprocessing
            (``training_config_hash``).
        data_version: 12 hex digits identifying the raw data (``DatasetRef.data_version``).
    """

    model_type: str
    algorithm: str
    feature_schema: tuple[str, ...]
    training_config_hash: str
    data_version: str

    def to_tags(self) -> dict[str, str]:
        """Render as string tags (keys ``FINGERPRINT_TAGS``; the schema as a JSON list)."""
        return {
            "model_type": self.model_type,
            "algorithm": self.algorithm,
            "feature_schema": json.dumps(list(self.feature_schema), separators=(",", ":")),
            "training_config_hash": self.training_config_hash,
            "data_version": self.data_version,
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ModelFingerprint | None:
        """Rebuild a fingerprint from tags written by ``to_tags``.

        Args:
            tags: a model version's tags (other keys are ignored).

        Returns:
            The fingerprint, or None when a key is missing or the schema is not a JSON list of
            strings (a version registered by something else).
        """
        if any(key not in tags for key in FINGERPRINT_TAGS):
            return None
        try:
            schema = json.loads(tags["feature_schema"])
        except ValueError:
            return None
        if not isinstance(schema, list) or not all(isinstance(name, str) for name in schema):
            return None
        return cls(
            model_type=tags["model_type"],
            algorithm=tags["algorithm"],
            feature_schema=tuple(schema),
            training_config_hash=tags["training_config_hash"],
            data_version=tags["data_version"],
        )


def training_config_hash(hyperparameters: dict[str, Any], preprocessing: dict[str, Any]) -> str:
    """Return 12 hex digits of the SHA-256 of the canonical JSON of both mappings.

    Args:
        hyperparameters: the hyperparameters the model was trained with.
        preprocessing: the preprocessing section of the spec, as plain data.

    Returns:
        A stable digest: key order does not matter, any value change changes it.
    """
    canonical = json.dumps(
        {"hyperparameters": hyperparameters, "preprocessing": preprocessing},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def fingerprint_from(request: RegistrationRequest) -> ModelFingerprint:
    """Build the fingerprint of the model a registration request describes.

    Args:
        request: the registration request (model type, algorithm, feature names,
            hyperparameters, preprocessing and lineage's data version are read).

    Returns:
        The fingerprint the README, "Model versions" compares.
    """
    return ModelFingerprint(
        model_type=request.model_type,
        algorithm=request.algorithm,
        feature_schema=tuple(request.feature_names),
        training_config_hash=training_config_hash(request.hyperparameters, request.preprocessing),
        data_version=request.lineage.data_version,
    )


def parse_version(version: str) -> tuple[int, int, int]:
    """Split ``MAJOR.MINOR.PATCH`` into integers.

    Args:
        version: e.g. ``"1.4.2"`` (no prefix, no pre-release suffix, no leading zeros).

    Returns:
        ``(major, minor, patch)``.

    Raises:
        ValueError: the string is not ``MAJOR.MINOR.PATCH``.
    """
    match = _SEMVER.match(version)
    if match is None:
        raise ValueError(f"not a semantic version MAJOR.MINOR.PATCH: {version!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def change_level(previous: ModelFingerprint | None, current: ModelFingerprint) -> str:
    """Classify the change between two fingerprints as ``major``, ``minor`` or ``patch``.

    Args:
        previous: the latest registered version's fingerprint, or None when unknown
            (treated as a major change: nothing can be promised about compatibility).
        current: the fingerprint of the model being registered.

    Returns:
        ``major`` (model type, algorithm or feature schema changed), ``minor``
        (hyperparameters or preprocessing changed) or ``patch`` (data only, or nothing).
    """
    if previous is None or (previous.model_type, previous.algorithm, previous.feature_schema) != (
        current.model_type,
        current.algorithm,
        current.feature_schema,
    ):
        return "major"
    if previous.training_config_hash != current.training_config_hash:
        return "minor"
    return "patch"


def next_semantic_version(
    previous: ModelFingerprint | None, previous_version: str | None, current: ModelFingerprint
) -> str:
    """Return the semantic version of a new registration (the README, "Model versions").

    Args:
        previous: fingerprint of the latest registered version, or None.
        previous_version: its semantic version, or None when there is no previous version.
        current: fingerprint of the model being registered.

    Returns:
        ``"1.0.0"`` for the first version; otherwise the previous version with its major,
        minor or patch part incremented (and the lower parts reset to 0) per ``change_level``.

    Raises:
        ValueError: ``previous_version`` is not ``MAJOR.MINOR.PATCH``.
    """
    if previous_version is None:
        return FIRST_VERSION
    major, minor, patch = parse_version(previous_version)
    level = change_level(previous, current)
    if level == "major":
        return f"{major + 1}.0.0"
    if level == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"
