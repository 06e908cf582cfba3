"""The local issue store on tmp_path: JSON files, idempotent comments, concurrent writers."""

from __future__ import annotations

import json
import re
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from mcp_server.backends.local.issues import LocalIssueStore
from mcp_server.errors import NotFoundError
from mcp_server.settings import Settings

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws")


@pytest.fixture
def store(settings: Settings) -> LocalIssueStore:
    return LocalIssueStore(settings)


def test_create_issue_takes_the_next_free_number_and_writes_json(
    store: LocalIssueStore, settings: Settings
) -> None:
    first = store.create_issue("Train iris", "```yaml\ntask: classification\n```", "alice", ["train"])
    second = store.create_issue("Train wine", "", "bob", [])

    assert (first.number, second.number) == (1, 2)
    assert first.url == "local://issues/1"
    assert first.author == "alice"
    assert first.repository == "local/issues"
    stored = json.loads((settings.home / "issues" / "1.json").read_text())
    assert stored["title"] == "Train iris"
    assert stored["body"] == "```yaml\ntask: classification\n```"
    assert stored["labels"] == ["train"]
    assert stored["state"] == "open"
    assert stored["comments"] == []
    assert ISO_UTC.match(stored["created_at"])
    assert [issue.number for issue in store.list_issues()] == [1, 2]
    assert store.get_issue(2).title == "Train wine"


def test_post_comment_appends_a_bot_comment(store: LocalIssueStore, settings: Settings) -> None:
    store.create_issue("a", "", "alice", [])
    store.create_issue("b", "", "alice", [])

    first = store.post_comment(1, "Training started")
    second = store.post_comment(2, "Spec invalid")
    third = store.post_comment(1, "Model registered")

    assert [first.id, second.id, third.id] == [1, 2, 3]  # increasing across the store
    assert first.issue_number == 1
    assert first.author == "issue-mlops[bot]"
    assert first.url == "local://issues/1#comment-1"
    assert third.url == "local://issues/1#comment-3"
    assert ISO_UTC.match(first.created_at)
    assert [c.body for c in store.list_comments(1)] == ["Training started", "Model registered"]
    stored = json.loads((settings.home / "issues" / "1.json").read_text())
    assert stored["comments"][1]["body"] == "Model registered"


def test_same_idempotency_key_returns_the_first_comment(store: LocalIssueStore, settings: Settings) -> None:
    store.create_issue("a", "", "alice", [])
    first = store.post_comment(1, "Verdict: accept", idempotency_key="exec-1:judge")

    again = store.post_comment(1, "Verdict: accept (retry)", idempotency_key="exec-1:judge")
    other = store.post_comment(1, "Registered", idempotency_key="exec-1:register")

    assert again == first
    assert again.body == "Verdict: accept"
    assert other.id == first.id + 1
    assert len(store.list_comments(1)) == 2
    stored = json.loads((settings.home / "issues" / "1.json").read_text())
    assert [c["idempotency_key"] for c in stored["comments"]] == ["exec-1:judge", "exec-1:register"]


def test_update_comment_replaces_the_body_only(store: LocalIssueStore) -> None:
    store.create_issue("a", "", "alice", [])
    posted = store.post_comment(1, "Status: training", idempotency_key="status")

    updated = store.update_comment(1, posted.id, "Status: evaluating")

    assert updated.body == "Status: evaluating"
    assert (updated.id, updated.url, updated.created_at) == (posted.id, posted.url, posted.created_at)
    assert store.list_comments(1) == [updated]
    assert store.post_comment(1, "ignored", idempotency_key="status") == updated


def test_unknown_issue_or_comment_raises_not_found(store: LocalIssueStore) -> None:
    with pytest.raises(NotFoundError, match="local issue #7 not found"):
        store.post_comment(7, "hello")
    with pytest.raises(NotFoundError, match="local issue #7 not found"):
        store.list_comments(7)
    with pytest.raises(NotFoundError, match="local issue #7 not found"):
        store.get_issue(7)
    store.create_issue("a", "", "alice", [])
    with pytest.raises(NotFoundError, match="comment 99 not found on local issue #1"):
        store.update_comment(1, 99, "x")
    assert store.list_issues()[0].comments == []


def test_concurrent_posts_from_threads_lose_nothing(settings: Settings) -> None:
    LocalIssueStore(settings).create_issue("a", "", "alice", [])
    LocalIssueStore(settings).create_issue("b", "", "alice", [])

    def post(n: int) -> int:
        store = LocalIssueStore(settings)  # separate instances share the store-wide lock
        return store.post_comment(1 + n % 2, f"comment {n}", idempotency_key=f"key-{n % 20}").id

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(post, range(60)))

    store = LocalIssueStore(settings)
    comments = store.list_comments(1) + store.list_comments(2)
    assert len(comments) == 20  # one per distinct key
    assert sorted(c.id for c in comments) == list(range(1, 21))
    assert set(ids) == {c.id for c in comments}
    assert all(body == f"comment {int(body.split()[1])}" for body in (c.body for c in comments))
    assert not list((settings.home / "issues").glob("*.tmp"))


def _post_in_process(home: str, n: int) -> int:
    return LocalIssueStore(Settings(home=Path(home))).post_comment(1, f"from process {n}").id


def test_concurrent_posts_from_processes_lose_nothing(store: LocalIssueStore, settings: Settings) -> None:
    store.create_issue("a", "", "alice", [])

    with ProcessPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(_post_in_process, [str(settings.home)] * 12, range(12)))

    assert sorted(ids) == list(range(1, 13))
    assert sorted(c.body for c in store.list_comments(1)) == sorted(f"from process {n}" for n in range(12))
