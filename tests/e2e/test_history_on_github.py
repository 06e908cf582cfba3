"""`mlops serve` with GITHUB_TOKEN and GITHUB_REPOSITORY: the comments and the history go to GitHub.

GitHub is the fake REST API on 127.0.0.1 (``tests/github_api.py``): a real process receives a
signed webhook over HTTP, runs the workflow, posts its comments on the issue and commits the
record, its plots and the index to the repository's default branch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agents.issue_detector import sign
from mcp_server.core.rendering.history_markdown import INDEX_DATA_PATH, INDEX_PATH, read_index_data
from mcp_server.server import free_port
from statemachine.webhooks import issue_payload, read_issue_file
from tests.conftest import EXAMPLES, REPO_ROOT
from tests.github_api import OWNER, REPO, TOKEN, FakeGitHub, serve

pytestmark = pytest.mark.slow
MLOPS = str(Path(sys.executable).with_name("mlops"))
SECRET = "webhook-secret-for-the-test"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    with serve(state):
        state.init_branch({"README.md": b"# models\n"})
        yield state


@pytest.fixture
def served(github: FakeGitHub, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    env.update(
        MLOPS_HOME=str(tmp_path / "home"),
        MLOPS_WEBHOOK_SECRET=SECRET,
        GITHUB_TOKEN=TOKEN,
        GITHUB_REPOSITORY=f"{OWNER}/{REPO}",
        GITHUB_API_URL=github.base_url,
        NO_COLOR="1",
    )
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [MLOPS, "serve", "--port", str(port)], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
        time.sleep(0.3)
    yield url
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def test_a_run_commits_its_record_to_github_and_the_comment_links_it(github: FakeGitHub, served: str) -> None:
    title, body = read_issue_file(EXAMPLES / "wine-logistic-regression.md")
    github.add_issue(12, title)
    payload = issue_payload(
        12,
        title,
        body,
        "alice",
        "OWNER",
        repository=f"{OWNER}/{REPO}",
        html_url=github.issues[12]["html_url"],
    )
    raw = json.dumps(payload).encode()
    answer = httpx.post(
        f"{served}/webhook",
        content=raw,
        headers={
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": "3f1c0d2e-0000-4000-8000-000000000012",
            "X-Hub-Signature-256": sign(SECRET.encode(), raw),
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert answer.status_code == 202, answer.text

    deadline = time.monotonic() + 240
    while len(github.history()) < 2 or not any("/blob/" in c["body"] for c in github.comments[12]):
        assert time.monotonic() < deadline, [c["body"][:300] for c in github.comments[12]]
        time.sleep(0.5)

    [commit, _initial] = github.history()
    files = github.files_at()
    [row] = read_index_data(files[INDEX_DATA_PATH].decode())
    record_path = f"training_history/{row['record_path']}"
    assert row["status"] == "succeeded"
    assert commit["message"].startswith("training history: issue #12 attempt 1 succeeded")
    record = files[record_path].decode()
    assert "https://github.example/acme/models/issues/12" in record
    plots = [path for path in files if path.startswith("training_history/assets/") and path.endswith(".png")]
    assert plots, sorted(files)
    assert all(files[path].startswith(b"\x89PNG") for path in plots)
    for path in plots:  # every link in the record is relative to it, so it renders on GitHub
        assert path.removeprefix("training_history/") in record
    assert row["record_path"] in files[INDEX_PATH].decode()
    link = f"https://github.example/acme/models/blob/{commit['sha']}/{record_path}"
    final = next(c["body"] for c in github.comments[12] if "/blob/" in c["body"])
    assert link in final
    assert "accuracy" in final
