"""Issue-form parsing (fixture triplets), form fields -> spec, and spec extraction fallbacks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

import pytest
import yaml

from mcp_server.core.spec import catalog
from mcp_server.core.spec.issue_form import (
    extract_spec,
    form_fields,
    matches_form,
    parse_issue_form,
    slugify,
    spec_from_form,
    yaml_blocks,
)
from mcp_server.core.spec.schema import DeploymentSpec, SpecValidationError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "issue_forms"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
TRAIN_TEMPLATE = ROOT / "issue_templates" / "train.yml"


def load_case(case: str) -> tuple[str, dict, dict]:
    folder = FIXTURES / case
    template = yaml.safe_load((folder / "template.yml").read_text())
    expected = json.loads((folder / "expected.json").read_text())
    return (folder / "issue.md").read_text(), template, expected


def errors_of(excinfo: pytest.ExceptionInfo[SpecValidationError]) -> list[tuple[str, str]]:
    return [(e.path, e.message) for e in excinfo.value.errors]


def form_body(**answers: str) -> str:
    """Render answers as GitHub does: ``### Label``, a blank line, the answer."""
    return "\n\n".join(f"### {label}\n\n{answer}" for label, answer in answers.items())


SIMPLE_TEMPLATE = {
    "name": "t",
    "description": "d",
    "body": [
        {"type": "input", "id": "task", "attributes": {"label": "Task"}},
        {"type": "input", "id": "dataset__source", "attributes": {"label": "Source"}},
    ],
}


# ---------------------------------------------------------------------------------------------
# parse_issue_form: fixture triplets
# ---------------------------------------------------------------------------------------------


def test_fixture_cases_cover_the_required_kinds() -> None:
    required = {
        "all_types",
        "no_response",
        "multiple_dropdown",
        "checkboxes_mixed",
        "yaml_textarea",
        "markdown_label",
        "missing_element",
    }
    assert required <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_parse_issue_form_fixture(case: str) -> None:
    body, template, expected = load_case(case)
    assert parse_issue_form(body, template) == expected


@pytest.mark.parametrize("case", CASES)
def test_parse_issue_form_fixture_with_crlf_line_ends(case: str) -> None:
    body, template, expected = load_case(case)
    assert parse_issue_form(body.replace("\n", "\r\n"), template) == expected


def test_parse_issue_form_refuses_a_body_from_another_form() -> None:
    with pytest.raises(SpecValidationError, match=r"not from this form.*### Task, ### Source") as excinfo:
        parse_issue_form("### Something else\n\nvalue", SIMPLE_TEMPLATE)
    assert excinfo.value.errors[0].path == "(issue body)"


def test_parse_issue_form_refuses_a_heading_twice() -> None:
    body = form_body(Task="classification") + "\n\n### Task\n\nregression"
    with pytest.raises(SpecValidationError, match=r"appears twice"):
        parse_issue_form(body, SIMPLE_TEMPLATE)


def test_headings_inside_code_blocks_are_not_fields() -> None:
    body = "```yaml\n### Task\n```\n"
    assert not matches_form(body, SIMPLE_TEMPLATE)
    assert matches_form(form_body(Task="x"), SIMPLE_TEMPLATE)


def test_heading_labels_are_trimmed() -> None:
    assert parse_issue_form("###   Task   \n\nregression\n", SIMPLE_TEMPLATE) == {
        "task": "regression",
        "dataset__source": None,
    }


def test_an_unclosed_render_fence_is_read_to_the_end() -> None:
    template = {"body": [{"type": "textarea", "id": "spec", "attributes": {"label": "S", "render": "yaml"}}]}
    assert parse_issue_form("### S\n\n```yaml\na: 1\n", template) == {"spec": "a: 1"}


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ({"name": "no body"}, r"needs a 'body' list"),
        ({"body": [{"type": "slider", "attributes": {"label": "x"}}]}, r"unknown element type 'slider'"),
        ({"body": [{"type": "input", "attributes": {}}]}, r"input element without a label"),
        (
            {
                "body": [
                    {"type": "input", "attributes": {"label": "A"}},
                    {"type": "input", "attributes": {"label": "A"}},
                ]
            },
            r"duplicate keys \['a'\]",
        ),
    ],
)
def test_form_fields_refuses_a_malformed_template(template: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        form_fields(template)


@pytest.mark.parametrize(
    ("label", "slug"),
    [
        ("The Name of the Thing", "the_name_of_the_thing"),
        ("  What's **up**?  ", "what_s_up"),
        ("A--b", "a_b"),
    ],
)
def test_slugify_matches_issue_ops_parser(label: str, slug: str) -> None:
    assert slugify(label) == slug


# ---------------------------------------------------------------------------------------------
# spec_from_form
# ---------------------------------------------------------------------------------------------


def test_spec_from_form_nests_on_double_underscores() -> None:
    fields = {
        "task": "classification",
        "dataset__source": "sklearn://iris",
        "dataset__split__seed": "7",
        "deployment__strategy": None,
    }
    assert spec_from_form(fields) == {
        "task": "classification",
        "dataset": {"source": "sklearn://iris", "split": {"seed": "7"}},
    }


def test_spec_from_form_merges_form_fields_into_the_yaml() -> None:
    fields = {"spec": "dataset:\n  target: y\nevaluation:\n  thresholds: {f1: 0.9}", "dataset__source": "s"}
    assert spec_from_form(fields) == {
        "dataset": {"target": "y", "source": "s"},
        "evaluation": {"thresholds": {"f1": 0.9}},
    }


def test_spec_from_form_puts_the_form_fields_first() -> None:
    fields = {"spec": "evaluation: {}\ndataset: {target: y}", "task": "regression", "dataset__source": "s"}
    assert list(spec_from_form(fields)) == ["task", "dataset", "evaluation"]


def test_spec_from_form_accepts_the_same_value_twice() -> None:
    assert spec_from_form({"spec": "task: regression", "task": "regression"}) == {"task": "regression"}


def test_spec_from_form_fills_a_null_yaml_value() -> None:
    assert spec_from_form({"spec": "dataset:\ntask: null", "task": "x", "dataset__source": "s"}) == {
        "dataset": {"source": "s"},
        "task": "x",
    }


def test_spec_from_form_reports_every_conflict_naming_both_sides() -> None:
    fields = {
        "spec": "task: regression\ndataset:\n  source: sklearn://wine",
        "task": "classification",
        "dataset__source": "sklearn://iris",
    }
    with pytest.raises(SpecValidationError) as excinfo:
        spec_from_form(fields)
    assert errors_of(excinfo) == [
        (
            "task",
            "set twice: form field 'task' says 'classification' and the 'spec' YAML says "
            "'regression'; keep one",
        ),
        (
            "dataset.source",
            "set twice: form field 'dataset__source' says 'sklearn://iris' and the 'spec' YAML says "
            "'sklearn://wine'; keep one",
        ),
    ]


def test_spec_from_form_refuses_a_scalar_where_a_form_field_nests() -> None:
    with pytest.raises(
        SpecValidationError, match=r"sets dataset to a string, so form field 'dataset__source'"
    ):
        spec_from_form({"spec": "dataset: iris", "dataset__source": "sklearn://iris"})


def test_spec_from_form_with_an_empty_or_commented_spec_field() -> None:
    assert spec_from_form({"spec": "# nothing here\n", "task": "regression"}) == {"task": "regression"}
    assert spec_from_form({"spec": None, "task": "regression"}) == {"task": "regression"}


def test_spec_from_form_reports_invalid_yaml_in_the_spec_field() -> None:
    with pytest.raises(
        SpecValidationError, match=r"invalid YAML in the 'spec' field at line 3, column 1"
    ) as excinfo:
        spec_from_form({"spec": "a: 1\nb: [1, 2\n"})
    assert excinfo.value.errors[0].path == "(yaml)"


# ---------------------------------------------------------------------------------------------
# extract_spec
# ---------------------------------------------------------------------------------------------


def test_extract_spec_reads_the_form_when_its_headings_are_there() -> None:
    body = form_body(Task="regression", Source="sklearn://diabetes")
    assert extract_spec(body, SIMPLE_TEMPLATE) == {
        "task": "regression",
        "dataset": {"source": "sklearn://diabetes"},
    }


def test_extract_spec_falls_back_to_one_yaml_block() -> None:
    body = "Please train this.\n\n```yaml\ntask: regression\n```\n\n```python\nprint('ignored')\n```\n"
    assert extract_spec(body, SIMPLE_TEMPLATE) == {"task": "regression"}
    assert extract_spec(body, None) == {"task": "regression"}


@pytest.mark.parametrize("info", ["yml", "YAML", "yaml title=spec", "~~~yaml"])
def test_extract_spec_accepts_yml_and_other_fence_spellings(info: str) -> None:
    fence = "~~~" if info.startswith("~") else "```"
    body = f"{fence}{info.removeprefix('~~~')}\ntask: regression\n{fence}"
    assert extract_spec(body, None) == {"task": "regression"}


def test_extract_spec_without_any_spec() -> None:
    with pytest.raises(
        SpecValidationError, match=r"no training spec found: fill in the training request form"
    ):
        extract_spec("Please train a model on my data.", SIMPLE_TEMPLATE)


def test_extract_spec_with_two_yaml_blocks() -> None:
    body = "```yaml\ntask: regression\n```\n\n```yml\ntask: classification\n```"
    with pytest.raises(
        SpecValidationError, match=r"found 2 fenced ```yaml blocks; keep exactly one"
    ) as excinfo:
        extract_spec(body, None)
    assert excinfo.value.errors[0].path == "(issue body)"


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("task: regression\ndataset:\n  source: [a\n", r"line 3, column 13: expected ',' or '\]'"),
        ("task: regression\n  algorithm: x\n", r"line 2, column 12: mapping values are not allowed here"),
        ("task: a\ntask: b\n", r"line 2, column 1: found duplicate key 'task'"),
        ("dataset:\n\tsource: x\n", r"line 2, column 1: found character '\\t'"),
    ],
)
def test_extract_spec_reports_invalid_yaml_with_line_and_column(yaml_text: str, match: str) -> None:
    with pytest.raises(SpecValidationError, match=r"invalid YAML in the yaml block at " + match) as excinfo:
        extract_spec(f"```yaml\n{yaml_text}```", None)
    assert excinfo.value.errors[0].path == "(yaml)"


@pytest.mark.parametrize(
    ("yaml_text", "kind"), [("- task: regression\n", "list"), ("just words\n", "string"), ("42\n", "number")]
)
def test_extract_spec_refuses_yaml_that_is_not_a_mapping(yaml_text: str, kind: str) -> None:
    with pytest.raises(
        SpecValidationError, match=rf"top level of the yaml block must be a mapping.*not a {kind}"
    ):
        extract_spec(f"```yaml\n{yaml_text}```", None)


def test_extract_spec_refuses_an_empty_yaml_block() -> None:
    with pytest.raises(SpecValidationError, match=r"the yaml block is empty"):
        extract_spec("```yaml\n# nothing\n```", None)


def test_yaml_blocks_ignore_other_languages_and_nested_fences() -> None:
    body = "````markdown\n```yaml\nnot: this\n```\n````\n```yaml\na: 1\n```"
    assert yaml_blocks(body) == ["a: 1"]


# ---------------------------------------------------------------------------------------------
# The training request form
# ---------------------------------------------------------------------------------------------


def train_template() -> dict:
    return yaml.safe_load(TRAIN_TEMPLATE.read_text())


def train_body(**overrides: str) -> str:
    answers = {
        "Model type": "supervised_learning",
        "Task": "classification",
        "Algorithm": "xgboost",
        "Dataset source": "sklearn://iris",
        "Target column": "target",
        "Deployment strategy": "_No response_",
        "Rest of the spec (YAML)": "_No response_",
        "Data use": "- [X] I confirm this data may be used to train and store a model "
        "(licence, privacy and consent allow it).",
    }
    answers.update(overrides)
    return "\n\n".join(f"### {label}\n\n{answer}" for label, answer in answers.items())


def test_train_form_yields_the_spec_without_the_confirmation() -> None:
    assert extract_spec(train_body(), train_template()) == {
        "model_type": "supervised_learning",
        "task": "classification",
        "algorithm": "xgboost",
        "dataset": {"source": "sklearn://iris", "target": "target"},
    }


def test_train_form_requires_the_data_use_confirmation_and_reports_other_errors_too() -> None:
    unchecked = (
        "- [ ] I confirm this data may be used to train and store a model "
        "(licence, privacy and consent allow it)."
    )
    body = train_body(**{"Data use": unchecked, "Rest of the spec (YAML)": "```yaml\ntask: regression\n```"})
    with pytest.raises(SpecValidationError) as excinfo:
        extract_spec(body, train_template())
    assert [path for path, _ in errors_of(excinfo)] == ["data_use", "task"]
    assert errors_of(excinfo)[0][1].startswith("required: check 'I confirm this data may be used")


def test_train_form_prefilled_spec_field_is_only_comments() -> None:
    template = train_template()
    spec_field = next(e for e in template["body"] if e.get("id") == "spec")
    value = spec_field["attributes"]["value"]
    body = train_body(**{"Rest of the spec (YAML)": f"```yaml\n{value}```"})
    assert "hyperparameters" not in extract_spec(body, template)


# GitHub's issue-forms schema: the keys each element type accepts.
ELEMENT_ATTRIBUTES = {
    "markdown": {"value"},
    "input": {"label", "description", "placeholder", "value"},
    "textarea": {"label", "description", "placeholder", "value", "render"},
    "dropdown": {"label", "description", "multiple", "options", "default"},
    "checkboxes": {"label", "description", "options"},
}


def test_train_form_follows_the_issue_forms_schema() -> None:
    template = train_template()
    assert (
        {"name", "description", "body"} <= set(template) <= {"name", "description", "title", "labels", "body"}
    )
    assert template["labels"] == ["mlops:train"]
    for element in template["body"]:
        assert set(element) <= {"type", "id", "attributes", "validations"}
        assert set(element["attributes"]) <= ELEMENT_ATTRIBUTES[element["type"]]
        if element["type"] == "markdown":
            assert "id" not in element
        else:
            assert re.fullmatch(r"[A-Za-z0-9_-]+", element["id"])
    fields = form_fields(template)
    assert len({f.key for f in fields}) == len({f.label for f in fields}) == len(fields)


def test_train_form_dropdowns_offer_exactly_the_spec_values() -> None:
    fields = {f.key: f for f in form_fields(train_template())}
    strategies = get_args(DeploymentSpec.model_fields["strategy"].annotation)
    assert fields["model_type"].options == catalog.MODEL_TYPES
    assert fields["task"].options == catalog.TASKS
    assert fields["algorithm"].options == catalog.ALGORITHMS
    assert fields["deployment__strategy"].options == strategies


def test_train_form_required_fields() -> None:
    template = train_template()
    required = {e["id"] for e in template["body"] if e.get("validations", {}).get("required")}
    # the dataset is optional in the form: reinforcement learning names an environment instead
    assert required == {"model_type", "task", "algorithm"}
    assert {f.key for f in form_fields(template) if f.required_options} == {"data_use"}


def test_train_form_with_an_environment_and_no_dataset_validates_as_control() -> None:
    from mcp_server.core.spec.schema import validate_spec

    fields = {
        "model_type": "reinforcement_learning",
        "task": "control",
        "algorithm": "a3c",
        "dataset__source": "_No response_",
        "dataset__target": "_No response_",
        "environment__name": "CartPole-v1",
    }
    body = "\n\n".join(f"### {_label(key)}\n\n{value}" for key, value in fields.items())
    confirmation = next(e for e in train_template()["body"] if e.get("id") == "data_use")
    box = confirmation["attributes"]["options"][0]["label"]
    body += f"\n\n### {confirmation['attributes']['label']}\n\n- [X] {box}"
    spec = validate_spec(extract_spec(body, train_template()), lambda: {"CartPole-v1"})
    assert spec.environment is not None and spec.environment.name == "CartPole-v1"
    assert spec.dataset is None


def _label(key: str) -> str:
    return next(e["attributes"]["label"] for e in train_template()["body"] if e.get("id") == key)


def test_the_form_says_every_supported_combination_runs():
    template = yaml.safe_load(TRAIN_TEMPLATE.read_text())
    intro = template["body"][0]["attributes"]["value"]
    algorithm_help = next(e for e in template["body"] if e.get("id") == "algorithm")["attributes"][
        "description"
    ]
    for task, algorithm in catalog.SUPPORTED_TRAINING:
        assert f"`{algorithm}`" in intro, algorithm
        assert re.search(rf"{task}:[^;]*\b{algorithm}\b", algorithm_help), (task, algorithm)
