"""A model's input schema, the rows of a request checked against it, and its OpenAPI document.

Pure: no model, no server. Rows come as SageMaker's inference contract takes them:

- ``application/json``: ``{"instances": [row, ...]}`` (or a bare list of rows), each row a list of
  values in the schema's feature order or an object ``{feature: value}``;
- ``text/csv``: one row a line, values in the feature order, no header (a first line equal to the
  feature names is skipped).

A missing value is ``null`` in JSON and an empty field in CSV; it is accepted only where the
model imputes (the supervised pipelines do; a policy does not). Every error names the row (1-based)
and the feature, and says what is allowed.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Most rows one request may carry (a bound on the work a request can ask for).
MAX_ROWS = 10_000
#: Largest request body, bytes: SageMaker real-time inference's payload limit (6 MB).
MAX_BODY_BYTES = 6 * 1024 * 1024
#: Longest value quoted back in an error message, characters.
QUOTED_CHARS = 40


class RequestError(ValueError):
    """The request cannot be read as rows of the model's features; the message says why (a 400)."""


@dataclass(frozen=True)
class InputSchema:
    """What a model takes and gives.

    Attributes:
        feature_names: the input columns, in the order the model was trained on.
        feature_types: feature -> ``numeric`` | ``categorical``.
        task: ``classification``, ``regression``, ``clustering`` or ``control`` (a policy:
            observations in, actions out).
        allows_missing: whether a missing value may be sent (the model imputes it).
        class_labels: each class code's label (classification), or None.
    """

    feature_names: tuple[str, ...]
    feature_types: Mapping[str, str]
    task: str
    allows_missing: bool
    class_labels: tuple[str, ...] | None = None

    @functools.cached_property
    def numeric_names(self) -> list[str]:
        """The numeric features, in order (the columns of ``Rows.numbers``)."""
        return [name for name in self.feature_names if self.feature_types[name] == "numeric"]

    @functools.cached_property
    def categorical_names(self) -> list[str]:
        """The categorical features, in order (the columns of ``Rows.categories``)."""
        return [name for name in self.feature_names if self.feature_types[name] != "numeric"]

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], class_labels: Sequence[str] | None = None
    ) -> InputSchema:
        """Build the schema from a model folder's ``metadata.json``.

        Supervised and unsupervised models name ``feature_names`` and ``feature_types``; a
        policy names ``observation_names`` (all numeric, none missing).

        Raises:
            ValueError: the metadata names no features.
        """
        names = metadata.get("feature_names") or []
        if names:
            types = dict(metadata.get("feature_types") or {})
            kinds = {name: types.get(name, "numeric") for name in names}
            task = str(metadata.get("task") or "regression")
            labels = tuple(str(label) for label in class_labels) if class_labels else None
            return cls(tuple(names), kinds, task, allows_missing=True, class_labels=labels)
        observations = metadata.get("observation_names") or []
        if observations:
            kinds = {name: "numeric" for name in observations}
            return cls(tuple(observations), kinds, "control", allows_missing=False)
        raise ValueError(
            "metadata.json names no feature_names or observation_names; the model cannot be served"
        )


@dataclass(frozen=True)
class Rows:
    """A request's rows, checked, as the model takes them.

    Attributes:
        numbers: the numeric features (n, p) as float, NaN where missing, in schema order.
        categories: the categorical features (n, q) as str objects, None where missing.
    """

    numbers: np.ndarray
    categories: np.ndarray

    def __len__(self) -> int:
        """The number of rows."""
        return len(self.numbers)


def parse_body(schema: InputSchema, body: bytes, content_type: str) -> Rows:
    """Read a request body as rows and check them against ``schema``.

    Args:
        schema: the model's inputs.
        body: the request body (at most ``MAX_BODY_BYTES``).
        content_type: its ``Content-Type`` (``application/json`` or ``text/csv``, parameters
            ignored).

    Returns:
        The rows (``Rows``): numbers as float (NaN missing), categories as str (None missing).

    Raises:
        RequestError: an unsupported content type, a body that is too large or not JSON/CSV,
            no rows, too many rows, or a row that does not fit the schema.
    """
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(f"the body has {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted")
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(f"the body is not UTF-8 text ({err.reason} at byte {err.start})") from err
    if kind in ("application/json", "application/jsonlines", ""):
        rows = _json_rows(text)
    elif kind in ("text/csv", "application/csv"):
        rows = _csv_rows(schema, text)
    else:
        raise RequestError(
            f"Content-Type {shorten(kind)!r} is not supported; send application/json or text/csv"
        )
    if not rows:
        raise RequestError("the request has no rows; send at least one")
    if len(rows) > MAX_ROWS:
        raise RequestError(
            f"the request has {len(rows)} rows; at most {MAX_ROWS} are accepted in one request"
        )
    fast = _numeric_lists(schema, rows)
    if fast is not None:
        return Rows(fast, np.empty((len(rows), 0), dtype=object))
    numeric, categorical = schema.numeric_names, schema.categorical_names
    numbers = np.empty((len(rows), len(numeric)), dtype=float)
    categories = np.empty((len(rows), len(categorical)), dtype=object)
    for number, row in enumerate(rows, start=1):
        values = dict(zip(schema.feature_names, _row_values(schema, row, number), strict=True))
        for j, name in enumerate(numeric):
            value = _checked(schema, name, values[name], number)
            numbers[number - 1, j] = math.nan if value is None else value
        for j, name in enumerate(categorical):
            categories[number - 1, j] = _checked(schema, name, values[name], number)
    return Rows(numbers, categories)


def rows_frame(schema: InputSchema, rows: Rows) -> Any:
    """The rows as a pandas frame with the training columns, in order (a pipeline's input).

    The training jobs read categories from Parquet as pandas' ``str`` dtype (missing: NaN, which
    their imputer replaces), so the categories are given that dtype: None would be a category
    of its own.
    """
    import pandas as pd

    data = {name: rows.numbers[:, j] for j, name in enumerate(schema.numeric_names)}
    data |= {
        name: pd.Series(rows.categories[:, j], dtype="str") for j, name in enumerate(schema.categorical_names)
    }
    return pd.DataFrame(data, columns=list(schema.feature_names))


def _numeric_lists(schema: InputSchema, rows: list[Any]) -> np.ndarray | None:
    """The rows as a float matrix, without a check per value, in the common case; else None.

    The common case: every feature is numeric and every row a list of finite JSON numbers of the
    right length. Otherwise the rows are checked one value at a time, which names what is wrong.
    """
    width = len(schema.feature_names)
    if schema.categorical_names:
        return None
    number_types = (int, float)
    for row in rows:
        if type(row) is not list or len(row) != width or not all(type(v) in number_types for v in row):
            return None
    try:
        matrix = np.array(rows, dtype=float)
    except (OverflowError, ValueError):
        return None
    if not np.isfinite(matrix).all():
        return None  # NaN or infinity: the slow path accepts or names them
    return matrix


def _json_rows(text: str) -> list[Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(
            f"the body is not JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from err
    except RecursionError as err:
        raise RequestError("the body nests JSON arrays or objects too deeply; a row is a flat list") from err
    if isinstance(document, Mapping):
        if "instances" not in document:
            keys = ", ".join(repr(shorten(str(key))) for key in list(document)[:5])
            raise RequestError(
                f'a JSON body is {{"instances": [row, ...]}} or a list of rows; it has keys {keys}'
            )
        document = document["instances"]
    if not isinstance(document, list):
        raise RequestError(f"instances must be a list of rows, not {type(document).__name__}")
    return document


def _csv_rows(schema: InputSchema, text: str) -> list[Any]:
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as err:
        raise RequestError(f"the body is not CSV ({err})") from err
    if rows and tuple(value.strip() for value in rows[0]) == schema.feature_names:
        rows = rows[1:]  # a header row
    return [[None if value.strip() == "" else value for value in row] for row in rows]


def _row_values(schema: InputSchema, row: Any, number: int) -> list[Any]:
    names = schema.feature_names
    if isinstance(row, Mapping):
        unknown = [str(key) for key in row if key not in schema.feature_types]
        if unknown:
            raise RequestError(
                f"row {number} names features the model does not take: {', '.join(map(repr, unknown[:5]))}; "
                f"it takes {_listed(names)}"
            )
        absent = [name for name in names if name not in row]
        if absent and not schema.allows_missing:
            raise RequestError(f"row {number} lacks {_listed(absent)}; every feature is required")
        return [row.get(name) for name in names]
    if not isinstance(row, list):
        raise RequestError(f"row {number} is {type(row).__name__}; a row is a list of values or an object")
    if len(row) != len(names):
        raise RequestError(
            f"row {number} has {len(row)} values; the model takes {len(names)} features: {_listed(names)}"
        )
    return row


def _checked(schema: InputSchema, name: str, value: Any, number: int) -> Any:
    """One value as the model takes it: float (numeric), str (categorical) or None (missing)."""
    kind = schema.feature_types[name]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if schema.allows_missing:
            return None
        raise RequestError(f"row {number}, feature {name!r}: a value is required (the model does not impute)")
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise RequestError(f"row {number}, feature {name!r} (numeric): {_quoted(value)} is not a number")
        try:
            number_value = float(value)
        except (ValueError, OverflowError) as err:
            raise RequestError(
                f"row {number}, feature {name!r} (numeric): {_quoted(value)} is not a number"
            ) from err
        if math.isnan(number_value):
            if schema.allows_missing:
                return None
            raise RequestError(
                f"row {number}, feature {name!r}: NaN is not accepted (the model does not impute)"
            )
        if math.isinf(number_value):
            raise RequestError(
                f"row {number}, feature {name!r} (numeric): {_quoted(value)} is not a finite number"
            )
        return number_value
    if isinstance(value, (list, dict)):
        raise RequestError(
            f"row {number}, feature {name!r} (categorical): {_quoted(value)} is not a category"
        )
    return str(value)


def openapi_document(schema: InputSchema, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an endpoint serving a model with ``schema``.

    Describes ``GET /ping`` and ``POST /invocations`` (JSON rows by name or in order, and CSV), the
    prediction response, and the 400 error body.
    """
    properties: dict[str, Any] = {}
    for name in schema.feature_names:
        kind = schema.feature_types[name]
        base: dict[str, Any] = {"type": "number"} if kind == "numeric" else {"type": "string"}
        properties[name] = {"anyOf": [base, {"type": "null"}]} if schema.allows_missing else base
    required = [] if schema.allows_missing else list(schema.feature_names)
    by_name = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    in_order = {
        "type": "array",
        "prefixItems": [properties[name] for name in schema.feature_names],
        "minItems": len(schema.feature_names),
        "maxItems": len(schema.feature_names),
        "description": "values in this order: " + ", ".join(schema.feature_names),
    }
    row = {"oneOf": [by_name, in_order]}
    example = {name: 0.0 if schema.feature_types[name] == "numeric" else "a" for name in schema.feature_names}
    prediction: dict[str, Any] = {"type": "string"} if schema.class_labels else {"type": "number"}
    if schema.class_labels:
        prediction["enum"] = list(schema.class_labels)
    response = {
        "type": "object",
        "properties": {
            "predictions": {"type": "array", "items": prediction},
            "probabilities": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}},
                "description": "per row, each class's probability (classification only)",
            },
            "variant": {"type": "string", "description": "the production variant that answered"},
            "model_version": {"type": "string"},
        },
        "required": ["predictions", "variant"],
    }
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {
            "/ping": {
                "get": {
                    "summary": "Health check",
                    "responses": {"200": {"description": "the models are loaded"}},
                }
            },
            "/invocations": {
                "post": {
                    "summary": "Predict",
                    "parameters": [
                        {
                            "name": "X-Amzn-SageMaker-Target-Variant",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "the production variant to use (else one is chosen by weight)",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "instances": {"type": "array", "items": row, "maxItems": MAX_ROWS}
                                    },
                                    "required": ["instances"],
                                },
                                "example": {"instances": [example]},
                            },
                            "text/csv": {
                                "schema": {"type": "string"},
                                "example": ",".join(str(v) for v in example.values()),
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one prediction a row",
                            "content": {
                                "application/json": {"schema": response},
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": {
                            "description": "a row does not fit the model",
                            "content": {"application/json": {"schema": error}},
                        },
                    },
                }
            },
        },
    }


def shorten(text: str, limit: int = QUOTED_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(value: Any) -> str:
    if isinstance(value, str):
        return repr(shorten(value))
    try:
        return repr(shorten(json.dumps(value, default=str)))
    except (RecursionError, ValueError):
        return f"a nested {type(value).__name__}"


def _listed(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
