"""Bundling the Lambda code without Docker: ``pip install --target`` plus the project's packages.

CDK bundles an asset in a Docker container unless a local bundler succeeds first. This one runs
pip for Lambda's platform (``manylinux2014_x86_64`` wheels for the runtime's Python, binary
wheels only, so nothing compiles on the build machine) into the asset folder, then copies the
packages the functions import (``agents/``, ``mcp_server/``), the issue form the webhook reads
(``issue_templates/train.yml``) and ``run.sh`` (the MCP server's start under the Lambda Web
Adapter). The asset's hash is computed from those inputs, so an
unchanged tree reuses the bundle.

Tests skip bundling (context ``aws:cdk:bundling-stacks`` = ``[]``); ``make synth`` bundles.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = Path(__file__).resolve().parent / "lambda"
REQUIREMENTS = LAMBDA_DIR / "requirements.txt"
#: The packages every function's code needs (agents, the MCP server and the core they share).
PACKAGES = ("agents", "mcp_server")
#: Data files the code reads: the issue form the webhook parses issue bodies with.
DATA_FILES = ("issue_templates/train.yml",)
PYTHON_VERSION = "3.14"
RUNTIME = lambda_.Runtime.PYTHON_3_14
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def source_files() -> list[Path]:
    """Every file the bundle is made from, in a stable order."""
    files = [REQUIREMENTS, LAMBDA_DIR / "run.sh", *(ROOT / name for name in DATA_FILES)]
    for package in PACKAGES:
        files += sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def bundle_hash() -> str:
    """SHA-256 over the bundle's inputs (paths and contents) and the target platform."""
    digest = hashlib.sha256(f"{PYTHON_VERSION}/manylinux2014_x86_64".encode())
    for path in source_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """Builds the bundle on this machine (see the module); returns False only when pip is missing."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: object) -> bool:  # noqa: D102
        target = Path(output_dir)
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "-qq", "--disable-pip-version-check",
                "--target", str(target), "--requirement", str(REQUIREMENTS),
                "--platform", "manylinux2014_x86_64", "--implementation", "cp",
                "--python-version", PYTHON_VERSION, "--only-binary=:all:",
            ],
            check=True,
        )  # fmt: skip
        for package in PACKAGES:
            shutil.copytree(ROOT / package, target / package, ignore=_IGNORED, dirs_exist_ok=True)
        for name in DATA_FILES:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
        shutil.copy2(LAMBDA_DIR / "run.sh", target / "run.sh")
        return True


def lambda_code() -> lambda_.Code:
    """The code asset every function uses (one bundle, hashed from its inputs)."""
    return lambda_.Code.from_asset(
        str(LAMBDA_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=bundle_hash(),
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
            local=LocalPythonBundling(),
        ),
    )
