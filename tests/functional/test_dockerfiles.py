"""The job and inference images: hadolint-clean, and consistent with the programs and pins they ship."""

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
        "inference",
        "monitoring",
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
    programs = {
        "evaluation": "evaluate",
        "preparation": "prepare",
        "inference": "serve",
        "monitoring": "monitor",
    }
    program = programs.get(family, "train")
    assert module == f"training_containers.{family}.{program}"
    assert importlib.util.find_spec(module) is not None
    for line in (dockerfile.parent / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            assert importlib.metadata.version(name.strip()) == version.strip(), line


def test_the_inference_image_serves_as_a_user_without_privileges_from_a_slim_final_stage():
    text = (REPO_ROOT / "training_containers" / "inference" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (.+)$", text, re.MULTILINE)
    assert len(stages) == 2 and stages[0].endswith("AS build")  # multi-stage: build tools stay behind
    final = text[text.rindex("\nFROM ") :]
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert re.search(r"^USER 10001$", final, re.MULTILINE)
    assert re.search(r"^EXPOSE 8080$", final, re.MULTILINE)  # SageMaker's inference port
    assert re.search(r'^CMD \["serve"\]$', final, re.MULTILINE)  # SageMaker runs "docker run IMAGE serve"
