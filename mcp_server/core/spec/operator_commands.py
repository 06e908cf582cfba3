"""Operator commands in issue comments, the spec merge patch and the spec diff. Pure.

While a run waits for an operator, a comment whose first non-empty line starts with
``/retrain``, ``/approve``, ``/cancel`` or ``/status`` steers it; every other comment is normal
discussion. ``/retrain`` carries a YAML patch of the spec, applied with JSON Merge Patch
semantics (RFC 7386, republished with the same algorithm as RFC 7396): ``null`` deletes a key,
mappings merge recursively, anything else replaces.
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from mcp_server.core.spec.errors import MISSING, SpecError, SpecValidationError
from mcp_server.core.spec.issue_form import load_yaml_mapping, yaml_blocks

CommandKind = Literal["retrain", "approve", "cancel", "status", "rollback", "deploy"]
#: The pseudo-path of errors in a ``/retrain`` patch.
PATCH_PATH = "(patch)"

_COMMAND = re.compile(r"^/(?P<kind>retrain|approve|cancel|status|rollback|deploy)(?:\s+(?P<text>.*))?$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class Command(BaseModel):
    """An operator command read from a comment.

    Attributes:
        kind: retrain, approve, cancel, status, rollback (``text``: a version, optional) or
            deploy (a challenger the champion/challenger gate held back).
        patch: ``/retrain``: the spec merge patch (a non-empty mapping); else ``None``.
        text: the rest of the command line after the command, stripped (a note such as a
            reason), ``""`` when there is none.
    """

    kind: CommandKind
    patch: dict[str, Any] | None = None
    text: str = ""


def looks_like_command(body: str) -> bool:
    """Whether the first non-empty line of a comment starts with one of the commands.

    Cheap, and true for every comment ``parse_command`` reads as a command (even one whose
    ``/retrain`` patch is invalid), so a webhook can ignore other comments before storing them.
    """
    for line in body.split("\n", 200)[:200]:
        if line.strip():
            return _COMMAND.match(line.strip()[:10_000]) is not None
    return False


def parse_command(body: str) -> Command | None:
    """Read an operator command from a comment.

    Args:
        body: the comment's Markdown.

    Returns:
        The command when the first non-empty line starts with ``/retrain``, ``/approve``,
        ``/cancel`` or ``/status`` (case-sensitive, followed by whitespace or the end of the
        line); ``None`` for any other comment.

    Raises:
        SpecValidationError: ``/retrain`` without a usable patch, one ``SpecError`` with path
            ``(patch)``: no patch or an empty one, more than one ``yaml`` block, invalid YAML
            (line and column counted from the patch's first line), or a patch that is not a
            mapping.
    """
    lines = (body or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    found = _COMMAND.match(lines[first].strip())
    if found is None:
        return None
    kind: CommandKind = found["kind"]  # type: ignore[assignment]
    text = (found["text"] or "").strip()
    if kind != "retrain":
        return Command(kind=kind, text=text)
    return Command(kind=kind, patch=_patch(body, lines[first + 1 :]), text=text)


def _patch(body: str, after: list[str]) -> dict[str, Any]:
    blocks = yaml_blocks(body)
    if len(blocks) > 1:
        raise _error(f"the comment has {len(blocks)} yaml blocks; put the whole patch in one yaml code block")
    text = blocks[0] if blocks else _unfence("\n".join(after))
    try:
        patch = load_yaml_mapping(text, "the /retrain patch")
    except SpecValidationError as err:
        raise SpecValidationError([SpecError(PATCH_PATH, e.value, e.message) for e in err.errors]) from err
    if not patch:
        raise _error(
            "/retrain needs the spec changes as YAML below the command, in a yaml code block, "
            "e.g. 'hyperparameters: {max_depth: 4}'; to accept the model as it is, reply /approve"
        )
    return patch


def _unfence(text: str) -> str:
    """The inside of a fenced block (any info string) when ``text`` is one, else ``text``."""
    lines = text.strip("\n").split("\n")
    if not _FENCE.match(lines[0]):
        return text
    inner = lines[1:]
    if inner and _FENCE.match(inner[-1]):
        inner = inner[:-1]
    return "\n".join(inner)


def _error(message: str) -> SpecValidationError:
    return SpecValidationError([SpecError(PATCH_PATH, MISSING, message)])


def merge_patch(spec: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a JSON Merge Patch (RFC 7386, section 2) to a spec.

    ``null`` (``None``) deletes the key; a mapping merges recursively into the target's mapping
    (replacing a non-mapping); anything else, lists included, replaces the target's value. A
    value whose meaning is null (random_forest ``max_features: null``) therefore cannot be set
    by a patch: deleting the key restores the default.

    Args:
        spec: the spec to patch; left unchanged.
        patch: the merge patch.

    Returns:
        A new, patched spec sharing no mutable value with ``spec`` or ``patch``.
    """
    return _merge(spec, patch)


def _merge(target: Any, patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386's MergePatch(Target, Patch) for a mapping patch."""
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        elif isinstance(value, dict):
            result[name] = _merge(result.get(name), value)
        else:
            result[name] = copy.deepcopy(value)
    return result


def spec_diff(
    old: dict[str, Any],
    new: dict[str, Any],
    old_label: str = "spec (attempt 1)",
    new_label: str = "spec (attempt 2)",
) -> str:
    """Return a unified diff of two specs dumped as YAML with sorted keys.

    Args:
        old: the spec before the patch.
        new: the spec after it.
        old_label: the ``---`` header, e.g. ``"spec (attempt 1)"``.
        new_label: the ``+++`` header, e.g. ``"spec (attempt 2)"``.

    Returns:
        The diff (``difflib.unified_diff``, 3 lines of context), lines joined with newlines, no
        trailing newline; ``""`` when the specs dump to the same YAML.
    """
    before, after = _dump(old), _dump(new)
    return "\n".join(difflib.unified_diff(before, after, old_label, new_label, lineterm=""))


def _dump(spec: dict[str, Any]) -> list[str]:
    text = yaml.safe_dump(spec, sort_keys=True, allow_unicode=True, default_flow_style=False)
    return text.splitlines()
