"""Operator commands in comments, the spec merge patch (RFC 7386) and the spec diff."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mcp_server.core.spec.operator_commands import PATCH_PATH, Command, merge_patch, parse_command, spec_diff
from mcp_server.core.spec.schema import SpecValidationError


def patch_error(body: str) -> str:
    with pytest.raises(SpecValidationError) as excinfo:
        parse_command(body)
    [error] = excinfo.value.errors
    assert error.path == PATCH_PATH
    return error.message


# ---------------------------------------------------------------------------------------------
# parse_command
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["approve", "cancel", "status", "rollback", "deploy"])
def test_simple_commands(kind: str) -> None:
    assert parse_command(f"/{kind}") == Command(kind=kind, patch=None, text="")


def test_trailing_text_on_the_command_line_is_kept() -> None:
    command = parse_command("\n\n  /approve good enough for the pilot  \nthanks all")

    assert command == Command(kind="approve", text="good enough for the pilot")


def test_retrain_with_a_fenced_yaml_block() -> None:
    body = (
        "/retrain less depth please\n\nHere is what I changed:\n\n"
        "```yaml\nhyperparameters:\n  max_depth: 4\n  subsample: 0.8\n```\n\nThanks!"
    )

    command = parse_command(body)

    assert command is not None
    assert command.kind == "retrain"
    assert command.text == "less depth please"
    assert command.patch == {"hyperparameters": {"max_depth": 4, "subsample": 0.8}}


def test_retrain_with_a_yml_block() -> None:
    command = parse_command("/retrain\r\n```yml\r\nevaluation:\r\n  thresholds: {f1: 0.9}\r\n```\r\n")

    assert command is not None and command.patch == {"evaluation": {"thresholds": {"f1": 0.9}}}


def test_retrain_with_the_patch_on_the_following_lines() -> None:
    command = parse_command("/retrain\nhyperparameters:\n  max_depth: 3\nretraining: {max_attempts: 5}\n")

    assert command is not None
    assert command.patch == {"hyperparameters": {"max_depth": 3}, "retraining": {"max_attempts": 5}}


def test_retrain_with_an_unlabelled_fence_on_the_following_lines() -> None:
    command = parse_command("/retrain\n```\nhyperparameters: {C: 0.3}\n```")

    assert command is not None and command.patch == {"hyperparameters": {"C": 0.3}}


def test_null_in_a_patch_is_kept_to_delete_a_key() -> None:
    command = parse_command("/retrain\n```yaml\npreprocessing:\n  outliers: null\n```")

    assert command is not None and command.patch == {"preprocessing": {"outliers": None}}


def test_invalid_yaml_names_line_and_column() -> None:
    message = patch_error("/retrain\n```yaml\nhyperparameters:\n  max_depth: [4\n```")

    assert message.startswith("invalid YAML in the /retrain patch at line 2, column 16: expected ',' or ']'")


def test_a_duplicate_key_is_an_error() -> None:
    message = patch_error("/retrain\nhyperparameters: {}\nhyperparameters: {}")

    assert "line 2, column 1: found duplicate key 'hyperparameters'" in message


def test_a_patch_that_is_not_a_mapping_is_an_error() -> None:
    with pytest.raises(SpecValidationError) as excinfo:
        parse_command("/retrain\n```yaml\n- max_depth: 4\n```")

    [error] = excinfo.value.errors
    assert error.path == PATCH_PATH
    assert error.value == [{"max_depth": 4}]
    assert "must be a mapping" in error.message and "not a list" in error.message


@pytest.mark.parametrize(
    "body",
    ["/retrain", "/retrain please\n\n", "/retrain\n```yaml\n```", "/retrain\n# nothing\n", "/retrain\n{}"],
)
def test_an_empty_patch_is_an_error(body: str) -> None:
    message = patch_error(body)

    assert "/retrain needs the spec changes as YAML" in message
    assert "/approve" in message


def test_two_yaml_blocks_are_an_error() -> None:
    message = patch_error("/retrain\n```yaml\na: 1\n```\n```yaml\nb: 2\n```")

    assert "2 yaml blocks" in message


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   \n\n",
        "Looks good to me",
        "I think we should /retrain with more depth",
        "> /approve\n\nquoting the instructions",
        "/Approve",
        "/approved",
        "/retraining\nhyperparameters: {max_depth: 3}",
        "`/cancel`",
    ],
)
def test_normal_discussion_is_not_a_command(body: str) -> None:
    assert parse_command(body) is None


# ---------------------------------------------------------------------------------------------
# merge_patch: RFC 7386, Appendix A (the cases whose target and patch are objects)
# ---------------------------------------------------------------------------------------------

RFC_7386_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_7386_APPENDIX_A)
def test_merge_patch_follows_rfc_7386_appendix_a(
    target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    original, patch_copy = copy.deepcopy(target), copy.deepcopy(patch)

    assert merge_patch(target, patch) == expected
    assert target == original and patch == patch_copy  # neither is modified


def test_merge_patch_result_shares_nothing_with_its_inputs() -> None:
    spec = {"hyperparameters": {"max_depth": 6}, "evaluation": {"metrics": ["f1"]}}
    patch = {"evaluation": {"thresholds": {"f1": 0.9}}}

    merged = merge_patch(spec, patch)
    merged["evaluation"]["metrics"].append("accuracy")
    merged["evaluation"]["thresholds"]["f1"] = 0.1

    assert spec["evaluation"]["metrics"] == ["f1"]
    assert patch["evaluation"]["thresholds"]["f1"] == 0.9


def test_merge_patch_on_a_spec() -> None:
    spec = {
        "algorithm": "xgboost",
        "hyperparameters": {"max_depth": 6, "subsample": 1.0},
        "preprocessing": {"outliers": {"method": "iqr", "factor": 1.5}, "scaling": "standard"},
    }
    patch = {"hyperparameters": {"max_depth": 4}, "preprocessing": {"outliers": None}}

    assert merge_patch(spec, patch) == {
        "algorithm": "xgboost",
        "hyperparameters": {"max_depth": 4, "subsample": 1.0},
        "preprocessing": {"scaling": "standard"},
    }


# ---------------------------------------------------------------------------------------------
# spec_diff
# ---------------------------------------------------------------------------------------------


def test_spec_diff_is_a_unified_diff_of_sorted_yaml() -> None:
    old = {"task": "classification", "hyperparameters": {"max_depth": 6, "n_estimators": 200}}
    new = merge_patch(old, {"hyperparameters": {"max_depth": 4}})

    diff = spec_diff(old, new, "spec (attempt 1)", "spec (attempt 2)")

    assert diff.splitlines() == [
        "--- spec (attempt 1)",
        "+++ spec (attempt 2)",
        "@@ -1,4 +1,4 @@",
        " hyperparameters:",
        "-  max_depth: 6",
        "+  max_depth: 4",
        "   n_estimators: 200",
        " task: classification",
    ]


def test_spec_diff_of_equal_specs_is_empty() -> None:
    spec = {"b": 1, "a": {"y": 2, "x": 1}}

    assert spec_diff(spec, {"a": {"x": 1, "y": 2}, "b": 1}, "spec (attempt 2)", "spec (attempt 3)") == ""


def test_rollback_takes_an_optional_version_and_lookalikes_are_not_commands() -> None:
    assert parse_command("/rollback 1.2.0") == Command(kind="rollback", text="1.2.0")
    assert parse_command("/rollback") == Command(kind="rollback", text="")
    assert parse_command("/rollbacks please") is None
    assert parse_command("please /deploy") is None
