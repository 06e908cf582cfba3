"""The training images: hadolint-clean, and consistent with the programs and pins they ship."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCKERFILES = sorted((REPO_ROOT / "training_containers").glob("*/Dockerfile"))
HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))


def test_every_training_family_has_a_dockerfile():
    assert {p.parent.name for p in DOCKERFILES} == {
        "sklearn",
        "xgboost",
        "pytorch",
        "rl",
        "evaluation",
        "preparation",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    result = subprocess.run([HADOLINT, "--format", "json", str(dockerfile)], capture_output=True, text=True)
    assert json.loads(result.stdout or "[]") == []
    assert result.returncode == 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_entry_point_is_the_family_program_and_pins_match_what_is_tested(dockerfile):
    text = dockerfile.read_text()
    module = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE).group(1))[-1]
    family = dockerfile.parent.name
    program = {"evaluation": "evaluate", "preparation": "prepare"}.get(family, "train")
    assert module == f"training_containers.{family}.{program}"
    assert importlib.util.find_spec(module) is not None
    for line in (dockerfile.parent / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            assert importlib.metadata.version(name.strip()) == version.strip(), line
