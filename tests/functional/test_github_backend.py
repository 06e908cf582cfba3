"""The GitHub issue backend through PyGithub against a fake GitHub REST API on 127.0.0.1.

The fake is a real HTTP server speaking GitHub's wire format for the endpoints PyGithub calls,
mounted under ``/api/v3`` as GitHub Enterprise is, so PyGithub's URL prefix handling is
exercised too. No mocks: every request crosses a socket.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_server.backends.github.issues import GitHubIssueBackend
from mcp_server.errors import NotFoundError, NotificationError, TransientError
from mcp_server.settings import Settings
from tests.github_api import CREATED, OWNER, PREFIX, REPO, TOKEN, FakeGitHub, serve


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    with serve(state):
        state.add_issue(12)
        yield state


def settings_for(url: str) -> Settings:
    return Settings(
        home=Path("/nonexistent"),
        github_token=TOKEN,
        github_repository=f"{OWNER}/{REPO}",
        github_api_url=url,
    )


def make_backend(url: str, **options: Any) -> GitHubIssueBackend:
    """A backend without PyGithub's pacing (0.25 s between requests), to keep tests fast."""
    return GitHubIssueBackend(
        settings_for(url), seconds_between_requests=0, seconds_between_writes=0, **options
    )


@pytest.fixture
def backend(fake: FakeGitHub) -> GitHubIssueBackend:
    return make_backend(fake.base_url)


def test_post_comment_sends_the_body_with_the_token(fake: FakeGitHub, backend: GitHubIssueBackend) -> None:
    comment = backend.post_comment(12, "Training started for **issue #12**")

    assert [(s.method, s.path) for s in fake.seen] == [
        ("GET", f"{PREFIX}/repos/acme/models"),
        ("GET", f"{PREFIX}/repos/acme/models/issues/12"),
        ("POST", f"{PREFIX}/repos/acme/models/issues/12/comments"),
    ]
    post = fake.requests("POST")[0]
    assert post.body == {"body": "Training started for **issue #12**"}
    assert all(s.headers["Authorization"] == f"token {TOKEN}" for s in fake.seen)
    stored = fake.comments[12][0]
    assert comment.id == stored["id"]
    assert comment.issue_number == 12
    assert comment.body == "Training started for **issue #12**"
    assert comment.author == "issue-mlops[bot]"
    assert comment.url == stored["html_url"]
    assert comment.created_at == CREATED


def test_idempotency_key_is_a_hidden_marker_and_prevents_a_second_post(
    fake: FakeGitHub, backend: GitHubIssueBackend
) -> None:
    first = backend.post_comment(12, "Verdict: accept", idempotency_key="exec-1:judge")
    again = backend.post_comment(12, "Verdict: accept", idempotency_key="exec-1:judge")
    other = backend.post_comment(12, "Registered v3", idempotency_key="exec-1:register")

    posts = fake.requests("POST")
    assert [p.body for p in posts] == [
        {"body": "Verdict: accept\n\n<!-- mlops-key: exec-1:judge -->"},
        {"body": "Registered v3\n\n<!-- mlops-key: exec-1:register -->"},
    ]
    assert again == first
    assert first.body == "Verdict: accept"
    assert other.id != first.id
    assert len(fake.comments[12]) == 2


def test_marker_is_found_beyond_the_first_page(fake: FakeGitHub, backend: GitHubIssueBackend) -> None:
    for n in range(150):
        body = f"comment {n}" + ("\n\n<!-- mlops-key: exec-7:notify -->" if n == 130 else "")
        fake.add_comment(12, body, login="someone")

    found = backend.post_comment(12, "Notify", idempotency_key="exec-7:notify")

    assert fake.requests("POST") == []
    assert found.id == fake.comments[12][130]["id"]
    assert found.body == "comment 130"
    pages = [s.query.get("page", ["1"])[0] for s in fake.requests("GET") if s.path.endswith("/comments")]
    assert pages == ["1", "2"]


def test_list_comments_maps_github_fields_oldest_first(fake: FakeGitHub, backend: GitHubIssueBackend) -> None:
    fake.add_comment(12, "/retrain\n```yaml\nhyperparameters: {max_depth: 4}\n```", login="alice")
    fake.add_comment(12, "Accepted\n\n<!-- mlops-key: exec-2:judge -->")

    comments = backend.list_comments(12)

    assert [(c.author, c.body) for c in comments] == [
        ("alice", "/retrain\n```yaml\nhyperparameters: {max_depth: 4}\n```"),
        ("issue-mlops[bot]", "Accepted"),
    ]
    assert [c.id for c in comments] == [c["id"] for c in fake.comments[12]]
    assert all(c.issue_number == 12 for c in comments)


def test_unknown_issue_raises_not_found(fake: FakeGitHub, backend: GitHubIssueBackend) -> None:
    with pytest.raises(NotFoundError, match=r"acme/models#99: GitHub answered 404"):
        backend.post_comment(99, "hello")
    with pytest.raises(NotFoundError, match=r"acme/models#99"):
        backend.list_comments(99)
    assert fake.requests("POST") == []


def test_unknown_repository_raises_not_found(fake: FakeGitHub) -> None:
    settings = settings_for(fake.base_url)
    other = dataclasses.replace(settings, github_repository="acme/missing")

    with pytest.raises(NotFoundError, match="token can read acme/missing"):
        GitHubIssueBackend(other, seconds_between_requests=0).list_comments(12)


def test_server_error_on_post_is_transient_and_not_retried(
    fake: FakeGitHub, backend: GitHubIssueBackend
) -> None:
    fake.fail_next("POST", 502, "Server Error")

    with pytest.raises(TransientError, match=r"GitHub answered 502 'Server Error'; retry later") as caught:
        backend.post_comment(12, "hello", idempotency_key="k1")

    assert caught.value.retryable is True
    assert caught.value.__cause__ is not None
    assert len(fake.requests("POST")) == 1  # a lost answer may hide a landed post: no blind retry
    assert backend.post_comment(12, "hello", idempotency_key="k1").body == "hello"  # the workflow's retry


def test_server_error_on_read_is_retried_then_transient(fake: FakeGitHub) -> None:
    fake.fail_next("GET", 502, "Server Error")
    retried = make_backend(fake.base_url)

    assert retried.list_comments(12) == []  # one 502, then the retry succeeds

    no_retry = make_backend(fake.base_url, retry=0)
    fake.fail_next("GET", 503, "Service Unavailable")
    with pytest.raises(TransientError, match="GitHub answered 503"):
        no_retry.list_comments(12)


def test_rate_limit_is_transient(fake: FakeGitHub, backend: GitHubIssueBackend) -> None:
    reset = str(int(time.time()) + 3600)
    fake.fail_next(
        "POST",
        403,
        "API rate limit exceeded for user ID 1.",
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )

    with pytest.raises(TransientError, match="retry later"):
        backend.post_comment(12, "hello")

    fake.fail_next("GET", 429, "Too Many Requests")
    with pytest.raises(TransientError, match="GitHub answered 429"):
        make_backend(fake.base_url, retry=0).list_comments(12)


def test_refused_request_is_a_notification_error(fake: FakeGitHub, backend: GitHubIssueBackend) -> None:
    fake.fail_next("POST", 422, "Validation Failed")

    with pytest.raises(NotificationError, match="GitHub answered 422 'Validation Failed'") as caught:
        backend.post_comment(12, "hello")

    assert not isinstance(caught.value, TransientError)


def test_unreachable_server_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    backend = make_backend(f"http://127.0.0.1:{port}{PREFIX}", retry=0)

    with pytest.raises(TransientError, match="unreachable"):
        backend.list_comments(12)


def test_bad_key_and_missing_configuration_are_refused(backend: GitHubIssueBackend) -> None:
    with pytest.raises(NotificationError, match="without '-->'"):
        backend.post_comment(12, "x", idempotency_key="a --> b")
    with pytest.raises(NotificationError, match="set GITHUB_TOKEN"):
        GitHubIssueBackend(Settings(home=Path("/x")))


def test_a_comment_is_edited_in_place_and_keeps_its_idempotency_marker(backend, fake):
    first = backend.post_comment(12, "state: training", idempotency_key="status:run-1")
    edited = backend.update_comment(12, first.id, "state: evaluating")
    assert edited.id == first.id
    assert edited.body == "state: evaluating"
    [patch] = fake.requests("PATCH")
    assert patch.path.endswith(f"/issues/comments/{first.id}")
    assert patch.body["body"].startswith("state: evaluating")
    assert "mlops-key: status:run-1" in patch.body["body"]
    again = backend.post_comment(12, "state: whatever", idempotency_key="status:run-1")
    assert again.id == first.id
    assert len(fake.requests("POST")) == 1
