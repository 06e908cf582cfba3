"""Spec errors, and how validation problems are worded for the people who wrote the spec.

Every error names the field path, the value received and what is allowed; a misspelt key or
choice gets a "did you mean" from ``difflib``. Pure.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from mcp_server.core.spec.bounds import PREVIEW_CHARS, preview, shorten

#: The value of a SpecError for a field that is absent (shown without "got ...").
MISSING: Any = object()


@dataclass(frozen=True)
class SpecError:
    """One problem in a spec.

    Attributes:
        path: dotted field path, e.g. ``dataset.split.train``; ``(spec)`` for the whole spec.
        value: the value received (``None`` when the field is missing).
        message: what is wrong and what is allowed.
    """

    path: str
    value: Any
    message: str

    def __post_init__(self) -> None:
        """Bound the path and the message, which may quote a user's keys."""
        object.__setattr__(self, "path", shorten(str(self.path), PREVIEW_CHARS))
        object.__setattr__(self, "message", shorten(str(self.message), 4 * PREVIEW_CHARS))

    @property
    def shown_value(self) -> str:
        """The value received, as a ``repr`` of at most about 200 characters ("" when missing)."""
        return "" if self.value is MISSING else preview(self.value)

    def __str__(self) -> str:
        """Render as ``path: message (got value)``, quoting at most about 200 characters of the value."""
        shown = "" if self.value is MISSING else f" (got {self.shown_value})"
        return f"{self.path}: {self.message}{shown}"


#: Errors quoted in a SpecValidationError's own message (all of them stay in ``errors``).
MESSAGE_ERRORS = 20


class SpecValidationError(ValueError):
    """Raised when a spec has one or more errors; ``errors`` lists them all."""

    def __init__(self, errors: list[SpecError]) -> None:
        """Build from the list of errors (at least one); the message quotes the first 20."""
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:MESSAGE_ERRORS])
        more = len(errors) - MESSAGE_ERRORS
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))


def dedupe(errors: list[SpecError]) -> list[SpecError]:
    """One error per field path: the first found (structural errors come before cross-field ones)."""
    seen: set[str] = set()
    out = []
    for e in errors:
        if e.path not in seen:
            seen.add(e.path)
            out.append(e)
    return out


def from_pydantic(err: ValidationError, root: type[BaseModel], prefix: tuple[str, ...]) -> list[SpecError]:
    """Reword pydantic's errors as SpecErrors: path, value, and what is allowed.

    Unknown keys get a "did you mean" and the list of allowed keys of their section; literal
    choices get a "did you mean"; union members' errors on one path are merged into one line.

    Args:
        err: the validation error.
        root: the model that was validated (to find the allowed keys of a section).
        prefix: path parts to put in front (e.g. ``("hyperparameters",)``).

    Returns:
        One SpecError per field path.
    """
    out = []
    for item in err.errors(include_url=False):
        # pydantic adds a union-member tag to loc (e.g. "float", "literal['sqrt','log2']") after
        # a field whose type is a union; a user's own key that looks like a tag is kept.
        loc = strip_union_tags(root, tuple(str(p) for p in item["loc"]))
        path = _format_path(prefix + loc)
        value = item.get("input", MISSING)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _fields_at(root, loc[:-1])
            message = f"unknown key '{loc[-1]}'{hint(loc[-1], allowed)} Allowed keys: {', '.join(allowed)}"
            value = MISSING
        elif kind == "missing":
            value = MISSING
            message = "required"
        elif kind == "literal_error":
            expected = item.get("ctx", {}).get("expected", "")
            options = re.findall(r"'([^']*)'", expected)
            message = f"expected one of {expected}{hint(str(value), options)}"
        elif kind == "string_pattern_mismatch" and loc and loc[-1] in _PATTERN_HELP:
            message = _PATTERN_HELP[loc[-1]]
        else:
            message = item["msg"].removeprefix("Value error, ")
        out.append(SpecError(path or "(spec)", value, message))
    return _merge_union_errors(out)


_PATTERN_HELP = {
    "model_name": "1 to 63 letters, digits and single hyphens, starting and ending with a letter or digit",
    "name": "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit",
    "schedule": "a rate(...) or cron(...) expression, e.g. rate(7 days)",
    "instance_type": "a SageMaker instance type such as ml.m5.xlarge",
}


def strip_union_tags(root: type[BaseModel], loc: tuple[str, ...]) -> tuple[str, ...]:
    """Drop the union-member tags pydantic puts in an error location, walking the model's types.

    A part is a tag only right after a field (or item) whose type is a union of several
    non-None members; anywhere else it is a field name or a user's key, kept as is.

    Args:
        root: the validated model.
        loc: the error location as strings.

    Returns:
        The location without tags, e.g. ``("max_features",)`` for
        ``("max_features", "constrained-float")``.
    """
    out: list[str] = []
    annotation: Any = root
    for part in loc:
        annotation = _unwrap_optional(annotation)
        if _is_multi_union(annotation) and _is_union_tag(part):
            annotation = None  # which member failed is not needed for the path
            continue
        out.append(part)
        annotation = _child_type(annotation, part)
    return tuple(out)


def _unwrap_optional(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _is_multi_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _child_type(annotation: Any, part: str) -> Any:
    """The type of ``part`` inside ``annotation`` (a field, a dict value, a list item), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return field.annotation if field is not None else None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is list and args:
        return args[0]
    return None


def _is_union_tag(part: str) -> bool:
    return (
        part in ("int", "float", "bool", "str", "none")
        or part.startswith(("literal[", "list[", "dict[", "function-", "constrained-"))
        or part.endswith("Spec")
    )


def _merge_union_errors(errors: list[SpecError]) -> list[SpecError]:
    """Union fields yield one error per member; keep one line per path joining the messages."""
    merged: dict[str, SpecError] = {}
    for e in errors:
        if e.path in merged and merged[e.path].message != e.message:
            old = merged[e.path]
            merged[e.path] = SpecError(e.path, old.value, f"{old.message}, or {e.message.lower()}")
        else:
            merged.setdefault(e.path, e)
    return list(merged.values())


def _fields_at(root: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    model: Any = root
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _format_path(loc: tuple[str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path


def hint(value: str, choices: Any) -> str:
    """Return ``; did you mean 'X'?`` for the closest choice (case-insensitive), or ``""``."""
    if len(str(value)) > 100:
        return ""  # nothing that long is a typo of a short name
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean '{by_lower[close[0]]}'?" if close else ""


def or_list(options: Any) -> str:
    """Join options as ``a, b or c``."""
    options = list(options)
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
