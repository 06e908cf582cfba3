"""The inference server's parts in one process: rows, compiled pipelines, routing, capture, loading."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.manifold import TSNE
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from xgboost import XGBClassifier, XGBRegressor

from training_containers.common.preprocessing import build_preprocessor, fit_preprocessor
from training_containers.inference.capture import CaptureWriter, hour_folder
from training_containers.inference.compiled import compile_pipeline
from training_containers.inference.predictor import load_predictor
from training_containers.inference.schema import (
    InputSchema,
    RequestError,
    openapi_document,
    parse_body,
    rows_frame,
)
from training_containers.inference.serve import EndpointConfig, Router, VariantConfig

TYPES = {"age": "numeric", "income": "numeric", "city": "categorical", "plan": "categorical"}
SCHEMA = InputSchema(tuple(TYPES), TYPES, "classification", allows_missing=True, class_labels=("no", "yes"))


def frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows),
            "income": rng.lognormal(10, 1, rows),
            "city": pd.Series(rng.choice(["oslo", "lima", "pune"], rows), dtype="str"),
            "plan": pd.Series(rng.choice(["a", "b"], rows), dtype="str"),
        }
    )
    data.loc[::17, "age"] = np.nan
    data.loc[::23, "city"] = None
    y = ((data["age"].fillna(40) > 40) ^ (data["city"] == "oslo")).astype(int).to_numpy()
    return data, y


def fitted(preprocessing: dict[str, Any], estimator: Any, task: str = "classification") -> Pipeline:
    """A pipeline as the training programs build it: ``preprocess`` then ``model``."""
    X, y = frame()
    if task == "regression":
        y = X["age"].fillna(0).to_numpy() * 2.0
    preprocessor, encoded = fit_preprocessor(build_preprocessor(preprocessing, TYPES, task), X, y)
    estimator.fit(encoded, y)
    return Pipeline([("preprocess", preprocessor), ("model", estimator)])


@pytest.mark.parametrize(
    ("preprocessing", "estimator", "task"),
    [
        ({}, XGBClassifier(n_estimators=20, max_depth=3), "classification"),
        (
            {"encoding": "label", "scaling": "minmax"},
            RandomForestClassifier(n_estimators=20, random_state=0),
            "classification",
        ),
        (
            {"encoding": "target", "missing_values": "mean"},
            LogisticRegression(max_iter=500),
            "classification",
        ),
        (
            {"feature_selection": {"method": "correlation", "k": 3}},
            LogisticRegression(max_iter=500),
            "classification",
        ),
        ({"scaling": "none"}, XGBRegressor(n_estimators=20), "regression"),
        ({"encoding": "label"}, Ridge(), "regression"),
    ],
    ids=[
        "xgboost-onehot",
        "forest-label-minmax",
        "logistic-target",
        "logistic-select",
        "xgboost-regression",
        "ridge",
    ],
)
def test_a_compiled_pipeline_predicts_what_the_pipeline_predicts(preprocessing, estimator, task):
    pipeline = fitted(preprocessing, estimator, task)
    schema = InputSchema(tuple(TYPES), TYPES, task, allows_missing=True)
    compiled = compile_pipeline(pipeline, schema)
    assert compiled is not None
    X, _ = frame(200, seed=7)
    X.loc[3, "city"] = "unseen-city"  # an unknown category: all zeros (onehot) or -1 (label)
    body = json.dumps(
        {"instances": [[None if pd.isna(v) else v for v in row] for row in X.itertuples(index=False)]}
    )
    rows = parse_body(schema, body.encode(), "application/json")
    predicted, proba = compiled.predict(compiled.transform(rows.numbers, rows.categories), probabilities=True)
    expected = pipeline.predict(rows_frame(schema, rows))
    if task == "classification":
        np.testing.assert_array_equal(predicted, expected)
        np.testing.assert_allclose(proba, pipeline.predict_proba(rows_frame(schema, rows)), rtol=0, atol=1e-9)
    else:
        np.testing.assert_allclose(predicted, expected, rtol=1e-12)


def doubled_numbers(rows: pd.DataFrame) -> pd.DataFrame:
    """A transform the compiler does not know (module-level, so that joblib can save it)."""
    return rows[["age", "income"]].fillna(0) * 2


def test_a_pipeline_of_another_shape_is_not_compiled_and_is_still_served(tmp_path):
    X, y = frame()
    odd = Pipeline([("double", FunctionTransformer(doubled_numbers)), ("model", LogisticRegression())])
    odd.fit(X, y)
    assert compile_pipeline(odd, SCHEMA) is None
    folder = tmp_path / "model"
    folder.mkdir()
    joblib.dump(odd, folder / "model.joblib")
    (folder / "metadata.json").write_text(
        json.dumps({"task": "classification", "feature_names": list(TYPES), "feature_types": TYPES})
    )
    predictor = load_predictor(folder, ["no", "yes"])
    assert predictor.compiled is None
    rows = parse_body(predictor.schema, b'{"instances": [[50, 1000, "oslo", "a"]]}', "application/json")
    expected = odd.predict(pd.DataFrame([[50.0, 1000.0, "oslo", "a"]], columns=list(TYPES)))
    assert predictor.predict(rows)["predictions"] == [["no", "yes"][int(expected[0])]]


def test_a_model_that_cannot_predict_new_rows_is_refused(tmp_path):
    folder = tmp_path / "tsne"
    folder.mkdir()
    joblib.dump(Pipeline([("model", TSNE(n_components=2, perplexity=5))]), folder / "model.joblib")
    (folder / "metadata.json").write_text(
        json.dumps({"algorithm": "tsne", "task": "dimensionality_reduction", "feature_names": ["a"]})
    )
    with pytest.raises(ValueError, match="tsne cannot predict new rows"):
        load_predictor(folder)
    with pytest.raises(FileNotFoundError, match="metadata.json does not exist"):
        load_predictor(tmp_path / "nothing")
    (folder / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="cannot load .*model.joblib .*is it a training job's model"):
        load_predictor(folder)


def test_a_policy_serves_greedy_actions_and_refuses_missing_observations(tmp_path):
    import torch

    from training_containers.rl.a3c import ActorCritic
    from training_containers.rl.environment import EnvironmentInfo
    from training_containers.rl.greedy import save_a3c_network

    torch.manual_seed(0)
    network = ActorCritic(4, 2, [8])
    folder = tmp_path / "policy-model"
    save_a3c_network(
        folder / "policy", network, EnvironmentInfo("CartPole-v1", (4,), 2, 500), {"hidden_layers": [8]}
    )
    names = [f"observation_{i}" for i in range(4)]
    (folder / "metadata.json").write_text(
        json.dumps({"policy_format": "a3c_torch", "observation_names": names, "task": "control"})
    )
    predictor = load_predictor(folder)
    observations = [[0.01, -0.2, 0.03, 0.1], [0.1, 0.5, -0.2, -0.4]]
    rows = parse_body(predictor.schema, json.dumps({"instances": observations}).encode(), "application/json")
    with torch.no_grad():
        logits, _ = network(torch.tensor(observations, dtype=torch.float32))
    assert predictor.predict(rows)["predictions"] == logits.argmax(dim=1).tolist()
    with pytest.raises(RequestError, match="row 1, feature 'observation_2': a value is required"):
        parse_body(predictor.schema, b"[[0.1, 0.2, null, 0.3]]", "application/json")


def test_rows_by_name_fill_absent_features_as_missing_and_csv_reads_empty_fields_as_missing():
    rows = parse_body(SCHEMA, b'{"instances": [{"age": 30, "city": "oslo"}]}', "application/json")
    assert np.isnan(rows.numbers[0, 1]) and rows.numbers[0, 0] == 30.0
    assert rows.categories.tolist() == [["oslo", None]]
    csv_rows = parse_body(SCHEMA, b"age,income,city,plan\n30,,oslo,a\n", "text/csv; charset=utf-8")
    assert np.isnan(csv_rows.numbers[0, 1]) and csv_rows.categories.tolist() == [["oslo", "a"]]


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(document=JSON)
def test_any_json_document_is_rows_or_a_request_error(document):
    body = json.dumps(document).encode()
    message = ""
    try:
        rows = parse_body(SCHEMA, body, "application/json")
    except RequestError as err:
        message = str(err)
    else:
        assert rows.numbers.shape == (len(rows), 2) and rows.categories.shape == (len(rows), 2)
        return
    assert message.startswith(("row ", "the ", "a JSON body", "instances must"))


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["text/csv", "application/json", "text/plain", ""]),
)
def test_any_bytes_are_rows_or_a_request_error(body, content_type):
    message = None
    try:
        parse_body(SCHEMA, body, content_type)
    except RequestError as err:
        message = str(err)
    if message is None:
        assert content_type in ("text/csv", "application/json", "")
    else:
        assert 0 < len(message) < 400  # quoted values are shortened


def test_deeply_nested_json_is_a_request_error_not_a_crash():
    with pytest.raises(RequestError, match="nests JSON arrays or objects too deeply"):
        parse_body(SCHEMA, b"[" * 200_000, "application/json")
    nested = b'{"instances": [[1, 2, ' + b"[" * 900 + b"]" * 900 + b', "a"]]}'
    with pytest.raises(RequestError, match=r"row 1, feature 'city' \(categorical\)"):
        parse_body(SCHEMA, nested, "application/json")


def test_the_openapi_document_names_each_feature_with_its_type():
    document = openapi_document(SCHEMA, "churn endpoint", "1.2.0")
    row = document["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"
    ]["instances"]["items"]["oneOf"][0]
    assert row["properties"]["age"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert row["properties"]["plan"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert document["info"] == {"title": "churn endpoint", "version": "1.2.0"}


def test_the_router_follows_the_weights_and_never_sends_to_a_zero_weight_variant_unasked():
    router = Router({"blue": 9.0, "green": 1.0, "shadow": 0.0}, seed=3)
    picks = [router.choose() for _ in range(5000)]
    assert 0.88 < picks.count("blue") / len(picks) < 0.92
    assert "shadow" not in picks
    assert router.choose("shadow") == "shadow"
    with pytest.raises(RequestError, match="its variants are blue, green, shadow"):
        router.choose("red")


def test_an_endpoint_configuration_with_unusable_variants_is_refused(tmp_path):
    bad = [
        ({"endpoint_name": "e", "variants": []}, "has no variants"),
        (
            {
                "endpoint_name": "e",
                "variants": [{"name": "a", "model_dir": "m"}, {"name": "a", "model_dir": "n"}],
            },
            "names a variant twice",
        ),
        (
            {"endpoint_name": "e", "variants": [{"name": "a", "model_dir": "m", "weight": 0}]},
            "at least one > 0",
        ),
        ({"endpoint_name": "e", "variants": [{"name": "a"}]}, "is not an endpoint configuration"),
    ]
    for body, message in bad:
        path = tmp_path / "endpoint.json"
        path.write_text(json.dumps(body))
        with pytest.raises(ValueError, match=message):
            EndpointConfig.read(path)
    assert VariantConfig("a", "m").weight == 1.0


def test_capture_writes_sagemaker_records_by_variant_and_hour_and_samples(tmp_path):
    writer = CaptureWriter(tmp_path, "churn", 100, seed=1, flush_interval_s=0.05)
    for i in range(20):
        assert writer.offer(
            "blue", "text/csv", f"{i},2,oslo,a".encode(), "application/json", b'{"predictions":["no"]}'
        )
    writer.close()
    files = list((tmp_path / "churn" / "blue").rglob("*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [r["captureData"]["endpointInput"]["data"] for r in records] == [
        f"{i},2,oslo,a" for i in range(20)
    ]
    assert records[0]["captureData"]["endpointInput"]["encoding"] == "CSV"
    assert records[0]["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert len({r["eventMetadata"]["eventId"] for r in records}) == 20
    stamp = dt.datetime.strptime(records[0]["eventMetadata"]["inferenceTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.UTC
    )
    assert files[0].parent == hour_folder(tmp_path, "churn", "blue", stamp)

    half = CaptureWriter(tmp_path / "half", "churn", 50, seed=2, flush_interval_s=0.05)
    kept = sum(
        half.offer("blue", "application/json", b"[[1]]", "application/json", b"{}") for _ in range(2000)
    )
    half.close()
    assert 900 < kept < 1100 and half.written == kept
    none = CaptureWriter(tmp_path / "none", "churn", 0)
    assert not none.offer("blue", "application/json", b"[[1]]", "application/json", b"{}")
    none.close()
    assert not (tmp_path / "none").exists()


def test_capture_never_blocks_a_request_when_the_writer_falls_behind(tmp_path, monkeypatch):
    monkeypatch.setattr("training_containers.inference.capture.QUEUE_SIZE", 5)
    writer = CaptureWriter(tmp_path, "churn", 100, flush_interval_s=3600)
    started = time.perf_counter()
    kept = [writer.offer("blue", "application/json", b"[[1]]", "application/json", b"{}") for _ in range(8)]
    assert time.perf_counter() - started < 0.1
    assert kept == [True] * 5 + [False] * 3 and writer.dropped == 3
    writer.close()
    assert writer.written == 5
