"""The GitHub history backend through PyGithub against the fake GitHub REST API on 127.0.0.1.

Every request crosses a socket; the fake keeps real git objects (blob SHAs are git's own) and
refuses a ref update that is not a fast-forward, as GitHub does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mcp_server.backends.github.history import GitHubHistoryBackend, blob_sha
from mcp_server.core.rendering.comments import record_link
from mcp_server.core.rendering.history_markdown import (
    INDEX_DATA_PATH,
    INDEX_PATH,
    read_index_data,
    render_record,
)
from mcp_server.errors import HistoryError, NotFoundError, TransientError
from mcp_server.settings import Settings
from tests.functional.test_history_git import PNG, make_record
from tests.github_api import OWNER, REPO, TOKEN, FakeGitHub, serve

CODE = {"README.md": b"# models\n", "agents/judge.py": b"print('judge')\n"}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    with serve(state):
        state.init_branch(CODE)
        yield state


def make_backend(fake: FakeGitHub, **options: Any) -> GitHubHistoryBackend:
    """A backend without PyGithub's pacing (0.25 s between requests), to keep tests fast."""
    settings = Settings(
        home=Path("/nonexistent"),
        github_token=TOKEN,
        github_repository=f"{OWNER}/{REPO}",
        github_api_url=fake.base_url,
    )
    options = {"seconds_between_requests": 0, "seconds_between_writes": 0, "backoff_s": 0.02, **options}
    return GitHubHistoryBackend(settings, **options)


def test_a_record_its_plot_and_the_index_land_in_one_commit_on_the_default_branch(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    plot = tmp_path / "roc curve.png"
    plot.write_bytes(PNG)
    before = fake.refs["heads/main"]

    result = make_backend(fake).record_training_history(make_record(), {"roc_curve.png": plot.as_uri()})

    [commit, initial] = fake.history()
    assert initial["sha"] == before
    assert commit["sha"] == result.commit_sha == fake.refs["heads/main"]
    assert commit["parents"] == [before]
    assert commit["message"] == "training history: issue #12 attempt 1 succeeded (exec-1)"
    files = fake.files_at()
    record_path = "training_history/2025-03-04-issue-12-exec-1.md"
    asset = "training_history/assets/2025-03-04-issue-12-exec-1/roc_curve.png"
    assert set(files) == {*CODE, record_path, asset, INDEX_PATH, INDEX_DATA_PATH}
    assert files["agents/judge.py"] == CODE["agents/judge.py"]  # the rest of the tree is kept
    assert files[asset] == PNG
    record = files[record_path].decode()
    assert record == render_record(
        make_record(), {"roc_curve.png": "assets/2025-03-04-issue-12-exec-1/roc_curve.png"}
    )
    assert "![roc curve](assets/2025-03-04-issue-12-exec-1/roc_curve.png)" in record
    assert "[exec-1](2025-03-04-issue-12-exec-1.md)" in files[INDEX_PATH].decode()
    [row] = read_index_data(files[INDEX_DATA_PATH].decode())
    assert (row["record_id"], row["status"]) == ("exec-1", "succeeded")
    assert result.path == record_path
    assert result.repository == "acme/models"
    assert result.url == f"https://github.example/acme/models/blob/{result.commit_sha}/{record_path}"
    assert record_link(result) == f"[{record_path}]({result.url}) at commit `{result.commit_sha[:10]}`"
    patch = fake.requests("PATCH")[0]
    assert patch.path.endswith("/repos/acme/models/git/refs/heads/main")  # GitHub's update path
    assert patch.body == {"sha": result.commit_sha, "force": False}
    assert all(s.headers["Authorization"] == f"token {TOKEN}" for s in fake.seen)


def test_recording_the_same_record_again_makes_no_commit(fake: FakeGitHub) -> None:
    backend = make_backend(fake)
    first = backend.record_training_history(make_record())
    later = backend.record_training_history(make_record("exec-2", 13))
    posts = len(fake.requests("POST"))

    again = backend.record_training_history(make_record())

    assert again.commit_sha == first.commit_sha  # the last commit that touched the record
    assert fake.refs["heads/main"] == later.commit_sha
    assert len(fake.requests("POST")) == posts  # no blob, tree or commit was created
    assert len(fake.history()) == 3


def test_ten_runs_committing_at_once_lose_no_record(fake: FakeGitHub) -> None:
    records = [make_record(f"exec-{n}", 100 + n) for n in range(10)]

    def commit(record: Any) -> Any:  # one client each, as separate agents would have
        return make_backend(fake).record_training_history(record)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(commit, records))

    files = fake.files_at()
    for result in results:
        assert result.path in files
    rows = read_index_data(files[INDEX_DATA_PATH].decode())
    assert sorted(row["record_id"] for row in rows) == sorted(f"exec-{n}" for n in range(10))
    index = files[INDEX_PATH].decode()
    assert "10 run(s)" in index
    assert all(f"[exec-{n}](2025-03-04-issue-{100 + n}-exec-{n}.md)" in index for n in range(10))
    history = fake.history()
    assert len(history) == 11  # one commit per run, on top of the initial one
    assert {r.commit_sha for r in results} == {c["sha"] for c in history[:10]}
    assert len(fake.requests("PATCH")) > 10  # some updates were refused and retried


def test_the_index_takes_in_records_committed_without_index_data(fake: FakeGitHub) -> None:
    old = make_record("exec-old", 7, "rejected", started_at="2025-03-01T09:00:00Z")
    fake.init_branch(
        {**CODE, "training_history/2025-03-01-issue-7-exec-old.md": render_record(old, {}).encode()}
    )

    make_backend(fake).record_training_history(make_record())

    rows = {row["record_id"]: row for row in read_index_data(fake.files_at()[INDEX_DATA_PATH].decode())}
    assert set(rows) == {"exec-old", "exec-1"}
    assert rows["exec-old"]["status"] == "rejected"
    assert "2 run(s)" in fake.files_at()[INDEX_PATH].decode()


def test_a_record_deleted_from_the_repository_leaves_the_index(fake: FakeGitHub) -> None:
    backend = make_backend(fake)
    gone = backend.record_training_history(make_record("exec-gone", 5))
    files = {path: data for path, data in fake.files_at().items() if path != gone.path}
    fake.init_branch(files)  # someone removed the record by hand, index.json still lists it

    backend.record_training_history(make_record())

    rows = read_index_data(fake.files_at()[INDEX_DATA_PATH].decode())
    assert [row["record_id"] for row in rows] == ["exec-1"]


def test_a_branch_that_keeps_moving_is_a_transient_error(fake: FakeGitHub) -> None:
    for _ in range(3):
        fake.fail_next("PATCH", 422, "Update is not a fast forward")

    with pytest.raises(TransientError, match="moved under 3 attempts in a row"):
        make_backend(fake, max_attempts=3).record_training_history(make_record())

    assert len(fake.history()) == 1  # nothing landed
    assert make_backend(fake).record_training_history(make_record()).commit_sha == fake.refs["heads/main"]


def test_github_errors_are_typed(fake: FakeGitHub, tmp_path: Path) -> None:
    backend = make_backend(fake, retry=0)
    fake.fail_next("POST", 502, "Server Error")
    with pytest.raises(TransientError, match="GitHub answered 502"):
        backend.record_training_history(make_record())
    fake.fail_next("POST", 403, "Resource not accessible by integration")
    with pytest.raises(HistoryError, match="403 'Resource not accessible by integration'"):
        backend.record_training_history(make_record())
    with pytest.raises(HistoryError, match="no branch 'gh-pages'"):
        make_backend(fake, branch="gh-pages").record_training_history(make_record())
    other = make_backend(fake)
    other._full_name = "acme/missing"
    with pytest.raises(NotFoundError, match="token can read"):
        other.record_training_history(make_record())
    with pytest.raises(HistoryError, match="relative path without '..'"):
        backend.record_training_history(make_record(), {"../../etc/passwd": "file:///etc/passwd"})
    with pytest.raises(HistoryError, match="cannot read"):
        backend.record_training_history(make_record(), {"plot.png": (tmp_path / "missing.png").as_uri()})
    with pytest.raises(HistoryError, match="set GITHUB_TOKEN"):
        GitHubHistoryBackend(Settings(home=Path("/x")))
    assert len(fake.history()) == 1


def test_blob_sha_is_gits_own(tmp_path: Path) -> None:
    data = b"\x00binary\xffplot\n"
    (tmp_path / "f").write_bytes(data)
    expected = subprocess.run(
        ["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert blob_sha(data) == expected
