"""Semantic versioning rules (the README, "Model versions"): pure functions, no mocks."""

from __future__ import annotations

import dataclasses

import pytest

from mcp_server.core.models import Lineage, RegistrationRequest
from mcp_server.core.versioning import (
    ModelFingerprint,
    change_level,
    fingerprint_from,
    next_semantic_version,
    parse_version,
    training_config_hash,
)

BASE = ModelFingerprint(
    model_type="supervised_learning",
    algorithm="xgboost",
    feature_schema=("age", "income", "city"),
    training_config_hash="aaaaaaaaaaaa",
    data_version="111111111111",
)


def changed(**fields: object) -> ModelFingerprint:
    return dataclasses.replace(BASE, **fields)


def request(**overrides: object) -> RegistrationRequest:
    values: dict[str, object] = {
        "model_name": "churn-classification",
        "model_uri": "file:///tmp/model",
        "tracking_run_id": None,
        "metrics": {"f1": 0.9},
        "lineage": Lineage(
            issue_number=7,
            execution_name="exec-1",
            job_name="job-1",
            spec_hash="abc",
            data_version="0123456789ab",
            dataset_id="churn-0123456789ab",
        ),
        "model_type": "supervised_learning",
        "algorithm": "xgboost",
        "feature_names": ["age", "income"],
        "hyperparameters": {"max_depth": 4, "learning_rate": 0.1},
        "preprocessing": {"scaling": "standard", "encoding": "onehot"},
    }
    values.update(overrides)
    return RegistrationRequest.model_validate(values)


def test_first_version_is_1_0_0() -> None:
    assert next_semantic_version(None, None, BASE) == "1.0.0"


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (changed(model_type="unsupervised_learning"), "2.0.0"),
        (changed(algorithm="random_forest"), "2.0.0"),
        (changed(feature_schema=("age", "income")), "2.0.0"),
        (changed(feature_schema=("income", "age", "city")), "2.0.0"),
        (changed(training_config_hash="bbbbbbbbbbbb"), "1.5.0"),
        (changed(data_version="222222222222"), "1.4.3"),
        (BASE, "1.4.3"),
    ],
    ids=["model_type", "algorithm", "feature_removed", "feature_reordered", "config", "data", "retrain"],
)
def test_bump_from_1_4_2(current: ModelFingerprint, expected: str) -> None:
    assert next_semantic_version(BASE, "1.4.2", current) == expected


def test_major_change_wins_over_minor_and_data_changes() -> None:
    current = changed(algorithm="random_forest", training_config_hash="b" * 12, data_version="2" * 12)
    assert change_level(BASE, current) == "major"
    assert next_semantic_version(BASE, "3.2.1", current) == "4.0.0"


def test_minor_change_wins_over_data_change() -> None:
    current = changed(training_config_hash="b" * 12, data_version="2" * 12)
    assert next_semantic_version(BASE, "3.2.1", current) == "3.3.0"


def test_unknown_previous_fingerprint_is_a_major_change() -> None:
    assert next_semantic_version(None, "1.4.2", BASE) == "2.0.0"


@pytest.mark.parametrize("bad", ["1.0", "v1.0.0", "01.0.0", "1.0.0-rc1", ""])
def test_invalid_previous_version_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        next_semantic_version(BASE, bad, BASE)


def test_parse_version() -> None:
    assert parse_version("10.0.3") == (10, 0, 3)


def test_fingerprint_tags_round_trip() -> None:
    tags = BASE.to_tags()
    assert tags["feature_schema"] == '["age","income","city"]'
    assert ModelFingerprint.from_tags({**tags, "unrelated": "x"}) == BASE


@pytest.mark.parametrize(
    "tags",
    [
        {k: v for k, v in BASE.to_tags().items() if k != "algorithm"},
        {**BASE.to_tags(), "feature_schema": "not json"},
        {**BASE.to_tags(), "feature_schema": '{"a": 1}'},
    ],
    ids=["missing_key", "bad_json", "not_a_list"],
)
def test_fingerprint_from_incomplete_tags_is_none(tags: dict[str, str]) -> None:
    assert ModelFingerprint.from_tags(tags) is None


def test_training_config_hash_ignores_key_order_and_sees_every_value() -> None:
    first = training_config_hash({"a": 1, "b": 2}, {"scaling": "standard"})
    assert first == training_config_hash({"b": 2, "a": 1}, {"scaling": "standard"})
    assert first != training_config_hash({"a": 1, "b": 3}, {"scaling": "standard"})
    assert first != training_config_hash({"a": 1, "b": 2}, {"scaling": "minmax"})
    assert len(first) == 12
    assert int(first, 16) >= 0


def test_fingerprint_from_request() -> None:
    fingerprint = fingerprint_from(request())
    assert fingerprint.model_type == "supervised_learning"
    assert fingerprint.algorithm == "xgboost"
    assert fingerprint.feature_schema == ("age", "income")
    assert fingerprint.data_version == "0123456789ab"
    assert fingerprint.training_config_hash == training_config_hash(
        {"max_depth": 4, "learning_rate": 0.1}, {"scaling": "standard", "encoding": "onehot"}
    )


def test_requests_differing_in_hyperparameters_bump_minor() -> None:
    first = fingerprint_from(request())
    second = fingerprint_from(request(hyperparameters={"max_depth": 6, "learning_rate": 0.1}))
    assert next_semantic_version(first, "1.0.0", second) == "1.1.0"


def test_requests_differing_in_preprocessing_bump_minor() -> None:
    first = fingerprint_from(request())
    second = fingerprint_from(request(preprocessing={"scaling": "minmax", "encoding": "onehot"}))
    assert next_semantic_version(first, "1.0.0", second) == "1.1.0"


def test_requests_differing_in_data_only_bump_patch() -> None:
    first = fingerprint_from(request())
    lineage = request().lineage.model_copy(update={"data_version": "ffffffffffff"})
    assert next_semantic_version(first, "1.1.0", fingerprint_from(request(lineage=lineage))) == "1.1.1"
