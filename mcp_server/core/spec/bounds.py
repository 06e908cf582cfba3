"""Bounds on what a user may send: sizes checked before parsing, previews bounded when writing.

An issue body is at most ``MAX_BODY_CHARS`` characters (GitHub's own limit). YAML is composed
with ``BoundedLoader``, a PyYAML ``SafeLoader`` that refuses, *before anything is constructed*:
anchors and aliases (so no "billion laughs" expansion), explicit tags, collections nested deeper
than ``MAX_DEPTH``, more than ``MAX_NODES`` nodes, strings longer than ``MAX_STRING_CHARS`` and
integers outside 64 bits. ``preview`` renders any value in at most about ``PREVIEW_CHARS``
characters without walking more of it than it shows (``reprlib``), so an error message never
grows with the input. Pure: no I/O.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import Node, ScalarNode

#: GitHub refuses issue bodies and comments longer than this many characters.
MAX_BODY_CHARS = 65_536
#: Nesting depth of YAML mappings and lists (a spec needs 4).
MAX_DEPTH = 16
#: YAML nodes in one document (scalars, lists and mappings).
MAX_NODES = 20_000
#: Characters in one YAML string (paths and URLs included).
MAX_STRING_CHARS = 4_096
#: Integers are 64-bit: |n| < 2**63.
MAX_INT = 2**63 - 1
#: How much of a bad value an error message quotes.
PREVIEW_CHARS = 200

#: Flow brackets (``[`` ``{``) open at once beyond which text is refused before PyYAML scans it:
#: its scanner keeps every open bracket as a possible simple key and rescans them all at each
#: token, quadratic in the depth. Four times ``MAX_DEPTH``, so brackets inside plain strings
#: never trip it; the composer still enforces ``MAX_DEPTH`` itself.
MAX_FLOW_OPEN = 4 * MAX_DEPTH
#: Brackets, and the quoted strings and comments whose brackets do not count.
_FLOW_TOKENS = re.compile(
    r"""(?<![^\s\[{,:])"(?:[^"\\]|\\.)*"|(?<![^\s\[{,:])'(?:[^']|'')*'|(?<!\S)\#[^\n]*|[\[\]{}]"""
)
_INT_TAG = "tag:yaml.org,2002:int"
_DIGITS = re.compile(r"[0-9a-fA-F]")

_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxdict = 6
_repr.maxlist = 6
_repr.maxtuple = 6
_repr.maxset = 6
_repr.maxstring = 120
_repr.maxlong = 40
_repr.maxother = 120


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """Return a ``repr`` of ``value`` of at most ``limit`` characters (plus an ellipsis).

    ``reprlib`` looks at no more than the first few items of each collection, a few levels
    deep, so a huge or deeply nested value costs no more than a small one.

    Args:
        value: anything.
        limit: characters to keep (default ``PREVIEW_CHARS``).

    Returns:
        The shortened representation, e.g. ``'aaaa...aaa'`` or ``[1, 2, 3, 4, 5, 6, ...]``.
    """
    try:
        text = _repr.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still reported
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shorten(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with ``…``."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class InputTooLarge(ValueError):
    """A YAML document breaks one of the bounds of this module.

    Attributes:
        reason: what was refused and what is allowed (no more than a preview of the value).
        line: 1-based line of the offending node in the YAML text, or None.
        column: 1-based column, or None.
    """

    def __init__(self, reason: str, mark: Any = None) -> None:
        self.reason = reason
        self.line = mark.line + 1 if mark is not None else None
        self.column = mark.column + 1 if mark is not None else None
        place = f" at line {self.line}, column {self.column}" if mark is not None else ""
        super().__init__(f"{reason}{place}")


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the bounds of this module, checked while composing.

    Also refuses a key twice in one mapping (PyYAML would keep the last one silently).

    Raises (from ``yaml.load``):
        InputTooLarge: a bound is broken (alias, tag, depth, node count, string, integer).
        yaml.YAMLError: the text is not valid YAML.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Any:
        """Compose one node after checking the event that starts it against the bounds."""
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise InputTooLarge(
                f"YAML aliases (*{shorten(str(event.anchor), 40)}) are not allowed in a spec; "
                "write the value out",
                event.start_mark,
            )
        event = self.peek_event()
        if event.anchor is not None:
            raise InputTooLarge(
                f"YAML anchors (&{shorten(str(event.anchor), 40)}) are not allowed in a spec; "
                "write each value out",
                event.start_mark,
            )
        tag = getattr(event, "tag", None)
        if tag is not None and not (isinstance(event, ScalarEvent) and tag == "!"):
            raise InputTooLarge(
                f"explicit YAML tags ({shorten(str(tag), 60)}) are not allowed in a spec; write plain values",
                event.start_mark,
            )
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise InputTooLarge(f"more than {MAX_NODES:,} YAML values in one spec", event.start_mark)
        if isinstance(event, CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise InputTooLarge(f"lists and mappings nested more than {MAX_DEPTH} deep", event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            if isinstance(event, CollectionStartEvent):
                self._depth -= 1
        if isinstance(node, ScalarNode):
            _check_scalar(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Construct a mapping, refusing a key that appears twice."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {preview(key, 60)}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_scalar(node: ScalarNode) -> None:
    value = node.value
    if len(value) > MAX_STRING_CHARS:
        raise InputTooLarge(
            f"a value of {len(value):,} characters ({preview(value, 60)}); at most "
            f"{MAX_STRING_CHARS:,} are allowed",
            node.start_mark,
        )
    if node.tag == _INT_TAG and len(_DIGITS.findall(value)) > 19:
        raise InputTooLarge(
            f"the integer {preview(value, 40)} is too large; integers must fit in 64 bits",
            node.start_mark,
        )


def load_bounded(text: str) -> Any:
    """Parse one YAML document within the bounds of this module.

    Args:
        text: YAML text (at most ``MAX_BODY_CHARS`` characters).

    Returns:
        The plain data (mappings, lists, strings, numbers, booleans, None).

    Raises:
        InputTooLarge: the text is too long or breaks a bound (see ``BoundedLoader``).
        yaml.YAMLError: the text is not valid YAML.
    """
    if len(text) > MAX_BODY_CHARS:
        raise InputTooLarge(f"{len(text):,} characters of YAML; at most {MAX_BODY_CHARS:,} are allowed")
    _check_flow_nesting(text)
    data = yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    _check_integers(data)
    return data


def _check_flow_nesting(text: str) -> None:
    """Refuse text with more than ``MAX_FLOW_OPEN`` flow brackets open at once, before scanning."""
    depth = 0
    for match in _FLOW_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_FLOW_OPEN:
                raise InputTooLarge(f"lists and mappings nested more than {MAX_DEPTH} deep")
        elif token in "]}":
            depth = max(0, depth - 1)


def _check_integers(data: Any) -> None:
    """Refuse integers outside 64 bits that the composer could not see (sexagesimal, 0x...)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise InputTooLarge(
                f"the integer {preview(value, 40)} is too large; integers must fit in 64 bits"
            )
