"""Property: any issue body is either a TrainingSpec or the project's spec error, within a second.

Generated documents: mutations of the example issues (values of every type at random paths,
keys that look like pydantic's union tags), hostile YAML (alias bombs, deep nesting, explicit
tags, huge integers and strings) and broken issue forms (``tests/spec_inputs.py``). The full
10,000-input run is ``benchmarks/fuzz_spec.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_server.core.rendering.comments import spec_errors_comment
from mcp_server.core.rendering.markdown_text import MAX_COMMENT_CHARS
from mcp_server.core.spec.bounds import MAX_BODY_CHARS
from mcp_server.core.spec.issue_form import extract_spec
from mcp_server.core.spec.schema import SpecValidationError, TrainingSpec, validate_spec
from tests.spec_inputs import EXAMPLE_BODIES, as_body, hostile_yaml, random_body

TEMPLATE = yaml.safe_load((Path(__file__).resolve().parents[2] / "issue_templates" / "train.yml").read_text())
ENVIRONMENTS = frozenset({"CartPole-v1"})


def read(body: str) -> TrainingSpec | SpecValidationError:
    try:
        return validate_spec(extract_spec(body, TEMPLATE), lambda: ENVIRONMENTS)
    except SpecValidationError as err:
        return err


def assert_handled(body: str) -> None:
    # CPU seconds of this thread: the suite's runtime works in other threads of this process
    # and jobs in other processes, which must not count against the spec's one second.
    started = time.thread_time()
    outcome = read(body)
    message = str(outcome) if isinstance(outcome, SpecValidationError) else ""
    comment = spec_errors_comment(outcome.errors) if isinstance(outcome, SpecValidationError) else ""
    elapsed = time.thread_time() - started
    assert isinstance(outcome, TrainingSpec | SpecValidationError)
    assert elapsed < 1.0, f"{elapsed:.2f} s on {body[:200]!r}"
    assert len(message) < 20_000
    assert len(comment) <= MAX_COMMENT_CHARS


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | st.sampled_from(["none", "str", "fooSpec", "literal['x']", "x" * 5000]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_generated_bodies_are_a_spec_or_a_spec_error(rng) -> None:
    assert_handled(random_body(rng))


@settings(max_examples=200, deadline=None)
@given(
    example=st.sampled_from(EXAMPLE_BODIES),
    key=st.sampled_from(["model_type", "dataset", "hyperparameters", "evaluation", "tuning", "retraining"]),
    value=json_values,
)
def test_any_value_in_any_section_is_a_spec_or_a_spec_error(example: str, key: str, value: object) -> None:
    spec = extract_spec(example, TEMPLATE)
    spec[key] = value
    try:
        text = yaml.safe_dump(spec, allow_unicode=True)
    except yaml.YAMLError:
        return
    assert_handled(as_body(text))


@settings(max_examples=100, deadline=None)
@given(st.randoms(use_true_random=False))
def test_hostile_yaml_is_a_spec_error(rng) -> None:
    body = as_body(hostile_yaml(rng))
    assert_handled(body)


def test_a_billion_laughs_is_refused_without_expanding() -> None:
    bomb = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    bomb += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(8)]
    started = time.thread_time()
    outcome = read(as_body("\n".join(bomb) + "\nmodel_type: *i"))
    assert time.thread_time() - started < 0.5
    assert isinstance(outcome, SpecValidationError)
    assert "aliases" in str(outcome) or "anchors" in str(outcome)
    assert len(str(outcome)) < 500


@pytest.mark.parametrize(
    ("yaml_text", "path", "fragment"),
    [
        ("model_type: " + "[" * 1000 + "]" * 1000, "(yaml)", "nested more than 16 deep"),
        ("dataset:\n  split:\n    seed: " + "9" * 5000, "(yaml)", "at most 4,096 are allowed"),
        ("dataset:\n  split:\n    seed: " + "9" * 401, "(yaml)", "fit in 64 bits"),
        ("a: !!int", "(yaml)", "explicit YAML tags"),
        ("a: !!int 1e9999", "(yaml)", "explicit YAML tags"),
        ("a: !!map 3", "(yaml)", "explicit YAML tags"),
    ],
)
def test_out_of_bounds_yaml_names_what_is_refused(yaml_text: str, path: str, fragment: str) -> None:
    outcome = read(as_body(yaml_text))
    assert isinstance(outcome, SpecValidationError)
    assert outcome.errors[0].path == path
    assert fragment in outcome.errors[0].message


def test_a_body_over_githubs_limit_is_refused_before_it_is_read() -> None:
    outcome = read(as_body("dataset:\n  target: " + "t" * MAX_BODY_CHARS))
    assert isinstance(outcome, SpecValidationError)
    assert outcome.errors[0].path == "(issue body)"
    assert "65,536" in outcome.errors[0].message


def test_fields_are_bounded_where_the_field_needs_it() -> None:
    base = extract_spec(EXAMPLE_BODIES[2], TEMPLATE)
    for path, value, fragment in [
        (("dataset", "split", "seed"), 2**32, "less than or equal to 4294967295"),
        (("dataset", "target"), "t" * 300, "at most 256 characters"),
        (("evaluation", "thresholds", "f1"), float("nan"), "finite number"),
    ]:
        spec = yaml.safe_load(yaml.safe_dump(base))
        node = spec
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        outcome = read(as_body(yaml.safe_dump(spec)))
        assert isinstance(outcome, SpecValidationError), path
        error = next(e for e in outcome.errors if e.path == ".".join(path))
        assert fragment in error.message
        assert len(str(error)) < 400


def test_keys_that_look_like_union_tags_are_reported_as_unknown_keys() -> None:
    spec = extract_spec(EXAMPLE_BODIES[2], TEMPLATE)
    spec["hyperparameters"] = {"none": 1}
    spec["str"] = 1
    outcome = read(as_body(yaml.safe_dump(spec)))
    assert isinstance(outcome, SpecValidationError)
    paths = {e.path for e in outcome.errors}
    assert {"hyperparameters.none", "str"} <= paths


def test_deep_flow_nesting_is_refused_before_scanning_and_quoted_brackets_do_not_count() -> None:
    from mcp_server.core.spec.bounds import InputTooLarge, load_bounded

    started = time.thread_time()
    with pytest.raises(InputTooLarge, match="nested more than 16 deep") as caught:
        load_bounded("model_type: " + "[a, " * 10_000 + "]" * 10_000)
    assert time.thread_time() - started < 0.5
    assert caught.value.args[0] == "lists and mappings nested more than 16 deep"  # no scan position
    quoted = "a: " + repr("[" * 100) + '\nb: "' + "{" * 100 + '" # ' + "[" * 100
    assert load_bounded(quoted) == {"a": "[" * 100, "b": "{" * 100}
