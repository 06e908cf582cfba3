"""Issue bodies for fuzzing the spec reader: the example issues, their mutations, and hostile YAML.

Shared by the property test (``tests/unit/test_spec_fuzz.py``) and ``benchmarks/fuzz_spec.py``.
Every function takes a ``random.Random`` so a run is reproducible from its seed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from mcp_server.core.spec.issue_form import yaml_blocks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "issues"
EXAMPLE_BODIES = [path.read_text() for path in sorted(EXAMPLES.glob("*.md"))]

#: Keys that look like pydantic's union tags, and other awkward keys.
AWKWARD_KEYS = ["none", "str", "int", "float", "bool", "fooSpec", "literal['a']", "list[int]", "", "0", "𝔘"]


def _huge_int(rng: random.Random) -> int:
    return rng.choice([10**30, -(10**19), 2**63, 10**400, int("9" * rng.randint(20, 300))])


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random plain value: scalars of every YAML type, huge and odd ones, lists and mappings."""
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3 and roll < 0.3:
        keys = [
            rng.choice(AWKWARD_KEYS + ["a", "max_depth", "train", "f1"]) for _ in range(rng.randint(0, 4))
        ]
        return {k: random_value(rng, depth + 1) for k in keys}
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            -1,
            rng.randint(-(10**6), 10**6),
            rng.uniform(-2, 2),
            float("nan"),
            float("inf"),
            1e308,
            _huge_int(rng),
            "",
            "x" * rng.choice([1, 10, 300, 5000]),
            "sqrt",
            "None",
            "../../etc/passwd",
            "file:///etc/passwd.csv",
            "sklearn://iris",
            "\x00\ud800"[: rng.randint(0, 1)],
            "ünïcødé 🚀",
        ]
    )


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


def mutate_spec(spec: dict[str, Any], rng: random.Random, steps: int = 3) -> Any:
    """Replace, delete or add values at random paths of a spec mapping."""
    data: Any = yaml.safe_load(yaml.safe_dump(spec))
    for _ in range(steps):
        paths = [p for p in _paths(data) if p]
        if not paths or rng.random() < 0.1:
            return random_value(rng)
        path = rng.choice(paths)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif action < 0.35 and isinstance(parent, dict):
            parent[rng.choice(AWKWARD_KEYS)] = random_value(rng)
        else:
            parent[path[-1]] = random_value(rng)
    return data


def hostile_yaml(rng: random.Random) -> str:
    """YAML that has broken parsers: alias bombs, deep nesting, tags, huge numbers and strings."""
    width = rng.randint(2, 10)
    levels = rng.randint(2, 9)
    bomb = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        bomb.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    key = rng.choice(["model_type", "evaluation:\n  thresholds:\n    f1", "hyperparameters:\n  max_depth"])
    depth = rng.choice([50, 999, 5000])
    choices = [
        "\n".join(bomb) + f"\n{key}: *a{levels - 1}",
        "model_type: " + "[" * depth + "]" * depth,
        "model_type:" + "".join(f"\n{'  ' * i}k{i}:" for i in range(1, min(depth, 400))) + " 1",
        "dataset:\n  split:\n    seed: " + "9" * rng.choice([25, 401, 5000]),
        "dataset:\n  split:\n    validation: " + str(10 ** rng.randint(20, 40)),
        "dataset:\n  target: " + "t" * rng.choice([5000, 100_000, 1_100_000]),
        "a: !!int",
        "a: !!int 1e9999",
        "a: !!map 3",
        "a: !!python/object:os.system ls",
        "a: !custom 3",
        "<<: {model_type: 1}",
        "hyperparameters: {none: 1}",
        "str: 1\nint: 2\nfooSpec: 3",
        "task: a\ntask: b",
        "\t- broken",
        "? [a, b]\n: c",
        "a: 0x" + "f" * 40,
        "a: 190:20:30:10:10:10:10:10:10:10:10:10:10",
        "- just\n- a list",
        "just a string",
        "~",
    ]
    return rng.choice(choices)


def as_body(yaml_text: str) -> str:
    """An issue body holding ``yaml_text`` as its one fenced YAML block."""
    return f"Please train this.\n\n```yaml\n{yaml_text}\n```\n"


def random_body(rng: random.Random) -> str:
    """One fuzz input: a mutated example, hostile YAML, or a broken issue form."""
    roll = rng.random()
    if roll < 0.45:
        body = rng.choice(EXAMPLE_BODIES)
        blocks = yaml_blocks(body)
        try:
            spec = yaml.safe_load(blocks[0]) if blocks else None
        except yaml.YAMLError:
            spec = None
        if not isinstance(spec, dict):
            spec = {"model_type": "supervised_learning", "task": "classification"}
        return as_body(yaml.safe_dump(mutate_spec(spec, rng, rng.randint(1, 6)), allow_unicode=True))
    if roll < 0.8:
        return as_body(hostile_yaml(rng))
    body = rng.choice(EXAMPLE_BODIES)
    lines = body.split("\n")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        lines[i] = rng.choice(
            ["None", "_No response_", "### Task", "```yaml", "```", hostile_yaml(rng), str(random_value(rng))]
        )
    return "\n".join(lines)
