"""The git history backend against a real repository on tmp_path, with the real ``git``."""

from __future__ import annotations

import subprocess
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from mcp_server.backends.local.history import GitHistoryBackend
from mcp_server.core.models import EvaluationReport, HistoryRecord, IssueRef
from mcp_server.core.rendering.history_markdown import (
    INDEX_DATA_PATH,
    INDEX_PATH,
    front_matter,
    read_index_data,
)
from mcp_server.errors import HistoryError
from mcp_server.settings import Settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def make_record(
    record_id: str = "exec-1", issue: int = 12, status: str = "succeeded", **extra: object
) -> HistoryRecord:
    values: dict[str, object] = {
        "record_id": record_id,
        "issue": IssueRef(number=issue, title="Train", url=f"local://issues/{issue}"),
        "status": status,
        "attempt": 1,
        "spec": {"task": "classification", "algorithm": "random_forest", "model_name": "bc"},
        "spec_hash": "0123456789ab",
        "evaluation": EvaluationReport(
            evaluation_id=f"eval-{record_id}",
            metrics={"accuracy": 0.93},
            n_test=50,
            report_uri="file:///m.json",
            duration_s=1.0,
        ),
        "thresholds": {"accuracy": 0.9},
        "started_at": "2025-03-04T10:00:00Z",
        "finished_at": "2025-03-04T10:05:00Z",
    }
    values.update(extra)
    return HistoryRecord(**values)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def commit_count(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD").strip())


def index_rows(repo: Path) -> list[str]:
    return [line for line in (repo / INDEX_PATH).read_text().splitlines() if line.startswith("| 2025")]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws", history_repository=tmp_path / "repo")


def test_first_use_creates_the_repository_with_an_initial_commit(settings: Settings) -> None:
    repo = settings.history_repo_path

    result = GitHistoryBackend(settings).record_training_history(make_record())

    log = git(repo, "log", "--format=%an <%ae>|%s").splitlines()
    assert log == [
        "issue-mlops <mlops@localhost>|training history: issue #12 attempt 1 succeeded (exec-1)",
        "issue-mlops <mlops@localhost>|Initialise training history",
    ]
    assert git(repo, "config", "--local", "user.name").strip() == "issue-mlops"
    assert git(repo, "config", "--local", "user.email").strip() == "mlops@localhost"
    assert (repo / "README.md").is_file()
    assert result.repository == str(repo)
    assert result.path == "training_history/2025-03-04-issue-12-exec-1.md"
    assert result.index_path == "training_history/README.md"


def test_record_is_committed_with_its_content_and_plots(settings: Settings, tmp_path: Path) -> None:
    plot = tmp_path / "evaluations" / "roc curve.png"
    plot.parent.mkdir()
    plot.write_bytes(PNG)
    repo = settings.history_repo_path
    backend = GitHistoryBackend(settings)

    result = backend.record_training_history(make_record(), {"roc_curve.png": plot.as_uri()})

    assert git(repo, "rev-parse", "HEAD").strip() == result.commit_sha
    assert git(repo, "show", "-s", "--format=%s", result.commit_sha).strip() == (
        "training history: issue #12 attempt 1 succeeded (exec-1)"
    )
    committed = git(repo, "show", f"{result.commit_sha}:{result.path}")
    assert committed == (repo / result.path).read_text()
    assert front_matter(committed)["record_id"] == "exec-1"
    assert "| accuracy | 0.93 | ≥ 0.9 | pass |" in committed
    assert "![roc curve](assets/2025-03-04-issue-12-exec-1/roc_curve.png)" in committed
    asset = "training_history/assets/2025-03-04-issue-12-exec-1/roc_curve.png"
    assert (repo / asset).read_bytes() == PNG
    changed = git(repo, "show", "--name-only", "--format=", result.commit_sha).split()
    assert sorted(changed) == sorted([result.path, INDEX_PATH, INDEX_DATA_PATH, asset])
    assert git(repo, "status", "--porcelain") == ""
    [row] = read_index_data(git(repo, "show", f"{result.commit_sha}:{INDEX_DATA_PATH}"))
    assert row["record_path"] == "2025-03-04-issue-12-exec-1.md"
    assert row["record_id"] == "exec-1"
    assert row["status"] == "succeeded"


def test_index_lists_every_record_newest_first(settings: Settings) -> None:
    backend = GitHistoryBackend(settings)
    backend.record_training_history(make_record("exec-a", 1, started_at="2025-03-01T09:00:00Z"))
    backend.record_training_history(make_record("exec-b", 2, "rejected", started_at="2025-03-03T09:00:00Z"))
    backend.record_training_history(make_record("exec-c", 3, "failed", started_at="2025-03-02T09:00:00Z"))

    rows = index_rows(settings.history_repo_path)

    assert [row.split(" | ")[2] for row in rows] == [
        "[exec-b](2025-03-03-issue-2-exec-b.md)",
        "[exec-c](2025-03-02-issue-3-exec-c.md)",
        "[exec-a](2025-03-01-issue-1-exec-a.md)",
    ]
    assert [row.split(" | ")[3] for row in rows] == ["rejected", "failed", "succeeded"]


def test_second_identical_call_makes_no_commit_and_returns_the_same_sha(settings: Settings) -> None:
    backend = GitHistoryBackend(settings)
    first = backend.record_training_history(make_record())
    later = backend.record_training_history(make_record("exec-2", 13))
    count = commit_count(settings.history_repo_path)

    again = GitHistoryBackend(settings).record_training_history(make_record())

    assert again == first
    assert again.commit_sha != later.commit_sha
    assert commit_count(settings.history_repo_path) == count


def test_changed_record_is_committed_again(settings: Settings) -> None:
    backend = GitHistoryBackend(settings)
    first = backend.record_training_history(make_record(status="rejected"))

    second = backend.record_training_history(make_record(status="succeeded"))

    assert second.commit_sha != first.commit_sha
    assert second.path == first.path
    assert front_matter((settings.history_repo_path / second.path).read_text())["status"] == "succeeded"


def test_eight_concurrent_threads_lose_no_record(settings: Settings) -> None:
    backend = GitHistoryBackend(settings)
    records = [make_record(f"exec-{n}", 100 + n) for n in range(8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(backend.record_training_history, records))

    repo = settings.history_repo_path
    assert len({r.commit_sha for r in results}) == 8
    assert len(list((repo / "training_history").glob("*-issue-*.md"))) == 8
    rows = index_rows(repo)
    assert len(rows) == 8
    assert {f"#{100 + n}" for n in range(8)} == {row.split(" | ")[1].split("]")[0][1:] for row in rows}
    assert commit_count(repo) == 9
    assert git(repo, "status", "--porcelain") == ""
    committed_index = git(repo, "show", f"HEAD:{INDEX_PATH}")
    assert committed_index == (repo / INDEX_PATH).read_text()


def _record_in_process(repo: str, home: str, n: int) -> str:
    settings = Settings(home=Path(home), history_repository=Path(repo))
    return GitHistoryBackend(settings).record_training_history(make_record(f"proc-{n}", 200 + n)).commit_sha


def test_concurrent_processes_lose_no_record(settings: Settings) -> None:
    GitHistoryBackend(settings).record_training_history(make_record())  # repository exists
    repo, home = str(settings.history_repo_path), str(settings.home)

    with ProcessPoolExecutor(max_workers=4) as pool:
        shas = list(pool.map(_record_in_process, [repo] * 4, [home] * 4, range(4)))

    assert len(set(shas)) == 4
    assert len(index_rows(settings.history_repo_path)) == 5
    assert git(settings.history_repo_path, "status", "--porcelain") == ""


def test_existing_repository_is_used_as_it_is(settings: Settings) -> None:
    repo = settings.history_repo_path
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "trunk")
    (repo / "app.py").write_text("print('hi')\n")
    (repo / "staged.txt").write_text("user's work\n")
    git(repo, "add", "app.py")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "user commit")
    git(repo, "add", "staged.txt")

    result = GitHistoryBackend(settings).record_training_history(make_record())

    assert git(repo, "log", "--format=%s").splitlines() == [
        "training history: issue #12 attempt 1 succeeded (exec-1)",
        "user commit",
    ]
    changed = git(repo, "show", "--name-only", "--format=", result.commit_sha).split()
    assert "staged.txt" not in changed  # the user's staged work is left staged, not committed
    assert git(repo, "status", "--porcelain").strip() == "A  staged.txt"


def test_unsafe_file_name_and_missing_source_raise_history_error(settings: Settings, tmp_path: Path) -> None:
    backend = GitHistoryBackend(settings)

    with pytest.raises(HistoryError, match=r"must be a relative path without '\.\.'"):
        backend.record_training_history(make_record(), {"../escape.png": (tmp_path / "x").as_uri()})
    with pytest.raises(HistoryError, match="cannot copy .*missing.png"):
        backend.record_training_history(make_record(), {"plot.png": (tmp_path / "missing.png").as_uri()})
    with pytest.raises(HistoryError, match="file:// URIs only"):
        backend.record_training_history(make_record(), {"plot.png": "s3://bucket/plot.png"})


def test_git_failure_carries_stderr(settings: Settings) -> None:
    backend = GitHistoryBackend(settings)
    backend.record_training_history(make_record())
    git_dir = settings.history_repo_path / ".git"
    (git_dir / "index.lock").write_text("")  # another git process holds the index

    with pytest.raises(HistoryError, match=r"git add .* failed .*index\.lock"):
        backend.record_training_history(make_record("exec-9", 19))


def test_invalid_started_at_raises_history_error(settings: Settings) -> None:
    with pytest.raises(HistoryError, match="not ISO-8601"):
        GitHistoryBackend(settings).record_training_history(make_record(started_at="last tuesday"))
