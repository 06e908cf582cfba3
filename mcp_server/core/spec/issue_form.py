"""Read a training spec out of an issue body: GitHub issue-form sections or one fenced YAML block.

GitHub renders a submitted issue form as one ``### {label}`` heading per field (markdown elements
are not rendered), a blank line, then the answer: ``_No response_`` when empty, the text for
inputs and textareas (inside a fenced block named after ``render`` when the textarea has one),
the selected options joined with ``", "`` for dropdowns, and a ``- [X] label`` / ``- [ ] label``
list for checkboxes. ``parse_issue_form`` reads such a body generically from the form's template;
``spec_from_form`` turns the fields into a raw spec mapping; ``extract_spec`` is the entry point
that also falls back to a single fenced ``yaml`` block.

Every problem is raised as ``SpecValidationError`` (the spec validator's error) so that callers
report one list of errors. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from mcp_server.core.spec.bounds import MAX_BODY_CHARS, InputTooLarge, load_bounded, preview, shorten
from mcp_server.core.spec.schema import MISSING, SpecError, SpecValidationError

#: The form field holding YAML for the rest of the spec (the base mapping of ``spec_from_form``).
SPEC_FIELD = "spec"
#: The nesting separator in form field ids: ``dataset__source`` is ``dataset.source``.
PATH_SEPARATOR = "__"
#: Pseudo-paths of errors that belong to no spec field.
BODY_PATH = "(issue body)"
YAML_PATH = "(yaml)"

_NO_RESPONSE = "_No response_"
#: What GitHub renders for a dropdown left at its implicit "None" option (no answer).
_DROPDOWN_NONE = "None"
_FIELD_TYPES = ("input", "textarea", "dropdown", "checkboxes")
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CHECKBOX = re.compile(r"^\s*[-*+]\s+\[(?P<mark>[ xX])\]\s+(?P<label>.*?)\s*$")
_YAML_INFO = ("yaml", "yml")


@dataclass(frozen=True)
class FormField:
    """One answerable element of an issue form.

    Attributes:
        key: the element's ``id``, or a slug of its label when it has none.
        type: ``input``, ``textarea``, ``dropdown`` or ``checkboxes``.
        label: the label, which GitHub renders as the ``### {label}`` heading.
        multiple: a dropdown that accepts several options.
        options: the option values (dropdown) or option labels (checkboxes).
        required_options: the checkbox labels that must be checked.
        render: the language a textarea is rendered in (its answer is then fenced), or None.
    """

    key: str
    type: str
    label: str
    multiple: bool = False
    options: tuple[str, ...] = ()
    required_options: tuple[str, ...] = ()
    render: str | None = None


def _error(path: str, value: object, message: str) -> SpecValidationError:
    return SpecValidationError([SpecError(path, value, message)])


# ---------------------------------------------------------------------------------------------
# The template
# ---------------------------------------------------------------------------------------------


def slugify(label: str) -> str:
    """Turn a label into a field key the way issue-ops/parser does.

    Args:
        label: a form element's label, e.g. ``"The Name of the Thing"``.

    Returns:
        Lower case, runs of other characters than ``a-z0-9`` as one ``_``, none at the ends,
        e.g. ``"the_name_of_the_thing"``.
    """
    return re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_")


def form_fields(template: Mapping[str, Any]) -> list[FormField]:
    """List the answerable elements of an issue-form template, in form order.

    Args:
        template: the parsed YAML of an issue form (``{"body": [{"type": ..., "id": ...,
            "attributes": {"label": ..., ...}}, ...], ...}``).

    Returns:
        One ``FormField`` per non-markdown element.

    Raises:
        ValueError: the template is malformed (no ``body`` list, an element without a label,
            an unknown element type, or two elements with the same key or label).
    """
    body = template.get("body")
    if not isinstance(body, list):
        raise ValueError("an issue-form template needs a 'body' list of elements")
    fields = [_form_field(element) for element in body if element.get("type") != "markdown"]
    for attribute in ("key", "label"):
        values = [getattr(f, attribute) for f in fields]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"issue-form template: duplicate {attribute}s {duplicates}")
    return fields


def _form_field(element: Mapping[str, Any]) -> FormField:
    kind = element.get("type")
    attributes = element.get("attributes") or {}
    label = str(attributes.get("label") or "").strip()
    if kind not in _FIELD_TYPES:
        raise ValueError(
            f"issue-form template: unknown element type {kind!r}; expected one of "
            f"markdown, {', '.join(_FIELD_TYPES)}"
        )
    if not label:
        raise ValueError(f"issue-form template: a {kind} element without a label")
    raw_options = attributes.get("options") or []
    if kind == "checkboxes":
        options = tuple(str(o["label"]).strip() for o in raw_options)
        required = tuple(str(o["label"]).strip() for o in raw_options if o.get("required"))
    else:
        options, required = tuple(str(o) for o in raw_options), ()
    return FormField(
        key=str(element.get("id") or slugify(label)),
        type=kind,
        label=label,
        multiple=bool(attributes.get("multiple", False)),
        options=options,
        required_options=required,
        render=attributes.get("render") if kind == "textarea" else None,
    )


# ---------------------------------------------------------------------------------------------
# The body
# ---------------------------------------------------------------------------------------------


def _lines(body: str) -> list[str]:
    return (body or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _fence_after(line: str, fence: str | None) -> str | None:
    """The open code fence after ``line`` (CommonMark rules), given the one open before it."""
    match = _FENCE.match(line)
    if fence is None:
        if match and not (match["fence"][0] == "`" and "`" in match["info"]):
            return match["fence"]
        return None
    closes = (
        match is not None
        and match["fence"][0] == fence[0]
        and len(match["fence"]) >= len(fence)
        and not match["info"].strip()
    )
    return None if closes else fence


def _heading(line: str) -> str | None:
    return line[3:].strip() if line.startswith("###") else None


def _walk(body: str) -> Iterator[tuple[str, bool]]:
    """Yield each line of a body with whether it is inside a fenced code block (fences included)."""
    fence: str | None = None
    for line in _lines(body):
        after = _fence_after(line, fence)
        yield line, fence is not None or after is not None
        fence = after


def _sections(body: str, labels: set[str]) -> dict[str, str]:
    """Split a body at the ``### {label}`` headings of ``labels`` (outside code blocks).

    Raises:
        SpecValidationError: a heading appears twice.
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line, in_code in _walk(body):
        label = None if in_code else _heading(line)
        if label in labels:
            if label in sections:
                raise _error(BODY_PATH, f"### {label}", "this heading appears twice; keep one answer")
            current = sections[label] = []
        elif current is not None:
            current.append(line)
    return {label: "\n".join(lines) for label, lines in sections.items()}


def matches_form(body: str, template: Mapping[str, Any]) -> bool:
    """Tell whether a body was written through this form (has one of its headings).

    Args:
        body: the issue body (Markdown).
        template: the parsed issue-form YAML.

    Returns:
        True when at least one ``### {label}`` heading of the template is in the body.

    Raises:
        ValueError: the template is malformed (see ``form_fields``).
    """
    labels = {f.label for f in form_fields(template)}
    return any(not in_code and _heading(line) in labels for line, in_code in _walk(body))


def parse_issue_form(body: str, template: Mapping[str, Any]) -> dict[str, object]:
    """Read the answers of an issue-form body, generically from the form's template.

    Headings match labels exactly (surrounding whitespace aside) and count only outside code
    blocks. Text before the first heading is ignored; a ``###`` line that is no field's heading
    is part of the answer above it.

    Args:
        body: the issue body as GitHub renders it (``### Label`` sections).
        template: the parsed issue-form YAML (see ``form_fields``).

    Returns:
        Field key -> answer, one key per non-markdown element: None when empty (``_No
        response_``) or absent from the body; a stripped string for inputs, textareas (fence
        removed when the textarea has ``render``) and single dropdowns; a list of strings for
        multiple dropdowns and for checkboxes (the checked labels, ``[]`` when none is).

    Raises:
        SpecValidationError: the body has none of the template's headings ("not from this
            form"), or a heading twice; paths ``(issue body)``.
        ValueError: the template is malformed (see ``form_fields``).
    """
    check_body_size(body)
    fields = form_fields(template)
    sections = _sections(body, {f.label for f in fields})
    if not sections:
        headings = ", ".join(f"### {f.label}" for f in fields)
        raise _error(BODY_PATH, MISSING, f"not from this form: none of its headings ({headings}) is in it")
    return {f.key: _answer(f, sections[f.label]) if f.label in sections else None for f in fields}


def _answer(field: FormField, raw: str) -> object:
    text = raw.strip()
    if text in ("", _NO_RESPONSE):
        return None
    if field.type == "checkboxes":
        return _checked(text)
    if field.type == "dropdown":
        if text == _DROPDOWN_NONE and _DROPDOWN_NONE not in field.options:
            return None  # GitHub's implicit "None" option of an optional dropdown: no answer
        return _choices(text, field.options) if field.multiple else text
    if field.render is not None:
        return _unfence(text) or None
    return text


def _checked(text: str) -> list[str]:
    matches = (_CHECKBOX.match(line) for line in text.split("\n"))
    return [m["label"] for m in matches if m and m["mark"] in "xX"]


def _choices(text: str, options: tuple[str, ...]) -> list[str]:
    """Split a multiple-dropdown answer on ``", "``, keeping options that contain ``", "`` whole."""
    chosen: list[str] = []
    rest = text
    by_length = sorted(options, key=len, reverse=True)
    while rest:
        option = next((o for o in by_length if rest == o or rest.startswith(o + ", ")), None)
        if option is None:
            return [part.strip() for part in text.split(", ")]
        chosen.append(option)
        rest = rest[len(option) + 2 :]
    return chosen


def _unfence(text: str) -> str:
    lines = text.split("\n")
    fence = _FENCE.match(lines[0])
    if fence is None:
        return text
    inner = lines[1:]
    if inner and _fence_after(inner[-1], fence["fence"]) is None:
        inner = inner[:-1]
    return "\n".join(inner).strip("\n")


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------


def load_yaml_mapping(text: str, where: str) -> dict[str, Any]:
    """Parse YAML whose top level must be a mapping.

    Args:
        text: the YAML text.
        where: what the text is, for messages (e.g. ``"the yaml block"``).

    Returns:
        The mapping; ``{}`` when the text is empty or only comments.

    Raises:
        SpecValidationError: path ``(yaml)``: invalid YAML (with the line and column, 1-based,
            counted from the first line of ``text``), a key twice, a top level that is not a
            mapping, or YAML outside the bounds of ``bounds.load_bounded`` (aliases, tags, depth,
            size).
    """
    try:
        data = load_bounded(text)
    except InputTooLarge as err:
        raise _error(YAML_PATH, MISSING, f"{where}: {err}") from err
    except yaml.MarkedYAMLError as err:
        raise _error(YAML_PATH, MISSING, _yaml_message(err, where)) from err
    except (yaml.YAMLError, ValueError, TypeError, ArithmeticError, RecursionError) as err:
        # PyYAML's own constructors can still fail on odd input; it is the user's YAML either way
        raise _error(YAML_PATH, MISSING, f"invalid YAML in {where}: {preview(str(err))}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _error(
            YAML_PATH,
            data,
            f"the top level of {where} must be a mapping of keys to values "
            f"(e.g. 'task: classification'), not a {_kind(data)}",
        )
    return data


def _yaml_message(err: yaml.MarkedYAMLError, where: str) -> str:
    mark = err.problem_mark or err.context_mark
    place = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = shorten(str(err.problem or err.context or "cannot parse"))
    return f"invalid YAML in {where}{place}: {problem}"


def _kind(value: object) -> str:
    names = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# Form fields -> raw spec
# ---------------------------------------------------------------------------------------------


def spec_from_form(fields: Mapping[str, object]) -> dict[str, Any]:
    """Turn issue-form answers into a raw spec mapping (not validated).

    The ``spec`` field (YAML text) is the base mapping; every other field's key is a spec path
    with ``__`` as the nesting separator (``dataset__source`` sets ``dataset.source``). None
    answers are skipped.

    Args:
        fields: field key -> answer, as returned by ``parse_issue_form``.

    Returns:
        The raw spec, e.g. ``{"model_type": ..., "dataset": {"source": ...}, ...}``; the keys the
        form fields set come first, in form order, then the YAML's own.

    Raises:
        SpecValidationError: every problem at once: invalid or non-mapping YAML in the ``spec``
            field (path ``(yaml)``); a form field and the YAML setting the same path to different
            values, or the YAML making a form field's parent a non-mapping (the spec path).
    """
    text = fields.get(SPEC_FIELD)
    spec = load_yaml_mapping(str(text), f"the '{SPEC_FIELD}' field") if text is not None else {}
    errors = []
    for key, value in fields.items():
        if key != SPEC_FIELD and value is not None:
            error = _set_path(spec, key, value)
            if error is not None:
                errors.append(error)
    if errors:
        raise SpecValidationError(errors)
    form_first = [k.split(PATH_SEPARATOR)[0] for k, v in fields.items() if k != SPEC_FIELD and v is not None]
    return {**{k: spec[k] for k in form_first}, **spec}


def _set_path(spec: dict[str, Any], key: str, value: object) -> SpecError | None:
    parts = key.split(PATH_SEPARATOR)
    node = spec
    for depth, part in enumerate(parts[:-1]):
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            path = ".".join(parts[: depth + 1])
            return SpecError(
                path,
                node[part],
                f"the '{SPEC_FIELD}' YAML sets {path} to a "
                f"{_kind(node[part])}, so form field '{key}' cannot set "
                f"{'.'.join(parts)} inside it; make {path} a mapping or drop one",
            )
        node = node[part]
    leaf, path = parts[-1], ".".join(parts)
    current = node.get(leaf)
    if current is not None and current != value:
        return SpecError(
            path,
            current,
            f"set twice: form field '{key}' says {preview(value, 80)} and the "
            f"'{SPEC_FIELD}' YAML says {preview(current, 80)}; keep one",
        )
    node[leaf] = value
    return None


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def yaml_blocks(body: str) -> list[str]:
    """Return the contents of the fenced ``yaml`` / ``yml`` code blocks of a Markdown body.

    Args:
        body: Markdown text.

    Returns:
        The text inside each block whose info string's first word is yaml or yml (any case),
        in order; a block left open runs to the end of the body, as in CommonMark.
    """
    blocks: list[list[str]] = []
    inside = False
    fence: str | None = None
    for line in _lines(body):
        after = _fence_after(line, fence)
        if fence is None and after is not None:
            inside = _is_yaml_fence(line)
            if inside:
                blocks.append([])
        elif fence is not None and after is None:
            inside = False
        elif inside:
            blocks[-1].append(line)
        fence = after
    return ["\n".join(block) for block in blocks]


def _is_yaml_fence(line: str) -> bool:
    match = _FENCE.match(line)
    words = match["info"].strip().split() if match else []
    return bool(words) and words[0].lower() in _YAML_INFO


def extract_spec(body: str, template: Mapping[str, Any] | None) -> dict[str, Any]:
    """Extract the raw spec mapping of an issue (not validated: pass it to ``validate_spec``).

    When the body has the template's headings it is read as the form: checkboxes with required
    options are confirmations (each required option must be checked; they are not spec fields),
    the other answers go through ``spec_from_form``. Otherwise the body must hold exactly one
    fenced ``yaml`` (or ``yml``) block, whose top level is a mapping.

    Args:
        body: the issue body (Markdown).
        template: the parsed issue-form YAML, or None to accept only a YAML block.

    Returns:
        The raw spec mapping.

    Raises:
        SpecValidationError: the body holds no spec, several YAML blocks (path ``(issue body)``),
            invalid or non-mapping YAML (path ``(yaml)``, with line and column), an unchecked
            required confirmation (the field key), or any ``spec_from_form`` error.
        ValueError: the template is malformed (see ``form_fields``).
    """
    check_body_size(body)
    if template is not None and matches_form(body, template):
        return _spec_from_form_body(body, template)
    blocks = yaml_blocks(body)
    if not blocks:
        form = "fill in the training request form or " if template is not None else ""
        raise _error(BODY_PATH, MISSING, f"no training spec found: {form}add one fenced ```yaml block")
    if len(blocks) > 1:
        raise _error(BODY_PATH, MISSING, f"found {len(blocks)} fenced ```yaml blocks; keep exactly one")
    spec = load_yaml_mapping(blocks[0], "the yaml block")
    if not spec:
        raise _error(YAML_PATH, MISSING, "the yaml block is empty")
    return spec


def check_body_size(body: str) -> None:
    """Refuse a body longer than GitHub allows, before anything reads it.

    Raises:
        SpecValidationError: path ``(issue body)``, when ``body`` has more than
            ``MAX_BODY_CHARS`` (65,536) characters.
    """
    if len(body or "") > MAX_BODY_CHARS:
        raise _error(
            BODY_PATH,
            MISSING,
            f"the body has {len(body):,} characters; GitHub allows at most {MAX_BODY_CHARS:,}",
        )


def _spec_from_form_body(body: str, template: Mapping[str, Any]) -> dict[str, Any]:
    answers = parse_issue_form(body, template)
    confirmations = [f for f in form_fields(template) if f.required_options]
    errors = [e for f in confirmations for e in _unconfirmed(f, answers[f.key])]
    confirmed = {f.key for f in confirmations}
    try:
        spec = spec_from_form({k: v for k, v in answers.items() if k not in confirmed})
    except SpecValidationError as err:
        raise SpecValidationError(errors + err.errors) from err
    if errors:
        raise SpecValidationError(errors)
    return spec


def _unconfirmed(field: FormField, answer: object) -> list[SpecError]:
    checked = answer if isinstance(answer, list) else []
    return [
        SpecError(field.key, MISSING, f"required: check '{option}'")
        for option in field.required_options
        if option not in checked
    ]
