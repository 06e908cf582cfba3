"""The GitHub issue backend: comments on real issues through PyGithub.

Idempotency: a comment posted with a key carries it as a hidden HTML comment at the end of its
body, ``<!-- mlops-key: KEY -->``. Before posting, the issue's comments are searched for that
marker; when one has it, that comment is returned and nothing is posted. The marker is removed
from the bodies this backend returns, so callers see what they posted, as with the local store.

Errors (``client.translated``): GitHub's 404/410 become ``NotFoundError``; 5xx, 429, rate
limits and network failures become ``TransientError`` (the workflow's ``Retry`` matches it);
anything else is a ``NotificationError``. Reads are retried a few times by PyGithub; posts are
not, because a post whose answer was lost may have landed, and only the marker search makes a
retry safe.
"""

from __future__ import annotations

import contextlib
import re

from github.Issue import Issue
from github.IssueComment import IssueComment
from github.Repository import Repository
from urllib3.util import Retry

from mcp_server.backends.base import IssueBackend
from mcp_server.backends.github.client import open_github, translated
from mcp_server.core.models import Comment, IssueRef
from mcp_server.errors import NotificationError
from mcp_server.settings import Settings

MARKER = "<!-- mlops-key: {key} -->"
_MARKER_AT_END = re.compile(r"\s*<!-- mlops-key: [^\n]*? -->\s*\Z")
_BAD_KEY = re.compile(r"-->|[\r\n]")


def marker(key: str) -> str:
    """Return the hidden marker that carries ``key`` in a comment body.

    Raises:
        NotificationError: the key contains ``-->`` or a line break.
    """
    if not key or _BAD_KEY.search(key):
        raise NotificationError(
            f"idempotency key {key!r} must be non-empty, on one line and without '-->', "
            "e.g. 'exec-12-abc:judge'"
        )
    return MARKER.format(key=key)


class GitHubIssueBackend(IssueBackend):
    """Issues and comments of ``settings.github_repository`` on GitHub (or GitHub Enterprise).

    Args:
        settings: ``github_token``, ``github_repository`` (``owner/name``) and
            ``github_api_url`` (``https://api.github.com``, or ``https://HOST/api/v3``).
        retry: PyGithub's retry policy: ``None`` for ``default_retry()``, ``0`` for no retries,
            or a ``urllib3`` ``Retry``.
        seconds_between_requests / seconds_between_writes: PyGithub's pacing, by default what
            GitHub asks of integrations to avoid secondary rate limits (0.25 s and 1 s).

    Raises:
        NotificationError: the token or the repository is not configured.
    """

    def __init__(
        self,
        settings: Settings,
        retry: int | Retry | None = None,
        seconds_between_requests: float = 0.25,
        seconds_between_writes: float = 1.0,
    ) -> None:
        self._settings = settings
        self._full_name = settings.github_repository
        self._github = open_github(
            settings, NotificationError, retry, seconds_between_requests, seconds_between_writes
        )
        self._repository: Repository | None = None

    def post_comment(self, issue_number: int, body: str, idempotency_key: str | None = None) -> Comment:
        """Post ``body`` on the issue, once per ``idempotency_key``.

        Args:
            issue_number: the issue (or pull request) number.
            body: Markdown text.
            idempotency_key: when a comment of the issue carries this key's marker, that comment
                is returned and nothing is posted.

        Returns:
            The comment (GitHub's id, ``html_url``, author login, ``created_at`` ISO-8601 UTC),
            its body without the marker.

        Raises:
            NotFoundError: the issue or the repository does not exist (or the token cannot see it).
            TransientError: GitHub answered 5xx or 429, a rate limit was hit, or it is unreachable.
            NotificationError: GitHub refused the comment (e.g. 401, 403, 422) or the key is invalid.
        """
        tag = marker(idempotency_key) if idempotency_key is not None else None
        what = f"comment on {self._full_name}#{issue_number}"
        with self._translated(what):
            issue = self._issue(issue_number)
            if tag is not None:
                for existing in issue.get_comments():
                    if tag in (existing.body or ""):
                        return _to_comment(existing, issue_number)
            posted = issue.create_comment(f"{body}\n\n{tag}" if tag else body)
            return _to_comment(posted, issue_number)

    def update_comment(self, issue_number: int, comment_id: int, body: str) -> Comment:
        """Replace a comment's body, keeping its idempotency marker so later searches still find it.

        Raises:
            NotFoundError: the issue, the comment or the repository does not exist.
            TransientError: GitHub answered 5xx or 429, a rate limit was hit, or it is unreachable.
            NotificationError: GitHub refused the edit.
        """
        with self._translated(f"edit comment {comment_id} on {self._full_name}#{issue_number}"):
            comment = self._issue(issue_number).get_comment(comment_id)
            kept = _MARKER_AT_END.search(comment.body or "")
            comment.edit(body + (kept.group(0) if kept else ""))
            return _to_comment(comment, issue_number)

    def list_comments(self, issue_number: int) -> list[Comment]:
        """Return the issue's comments, oldest first, markers removed.

        Raises:
            NotFoundError: the issue or the repository does not exist.
            TransientError: GitHub answered 5xx or 429, a rate limit was hit, or it is unreachable.
            NotificationError: GitHub refused the request.
        """
        with self._translated(f"list comments of {self._full_name}#{issue_number}"):
            issue = self._issue(issue_number)
            return [_to_comment(comment, issue_number) for comment in issue.get_comments()]

    def issue_state(self, issue_number: int) -> str:
        """Return the issue's ``state``: ``open`` or ``closed``.

        Raises:
            NotFoundError: the issue or the repository does not exist.
            TransientError: GitHub answered 5xx or 429, a rate limit was hit, or it is unreachable.
        """
        with self._translated(f"read {self._full_name}#{issue_number}"):
            return str(self._issue(issue_number).state)

    def open_issue(self, title: str, body: str, labels: list[str]) -> IssueRef:
        """Open an issue (``POST /repos/{owner}/{repo}/issues``) and return its reference.

        Raises:
            NotFoundError: the repository does not exist (or the token cannot see it).
            TransientError: GitHub answered 5xx or 429, a rate limit was hit, or it is unreachable.
            NotificationError: GitHub refused the issue (e.g. 403 without issues: write, 410 when
                issues are disabled).
        """
        with self._translated(f"open an issue on {self._full_name}"):
            if self._repository is None:
                self._repository = self._github.get_repo(self._full_name)
            issue = self._repository.create_issue(title=title, body=body, labels=labels)
            return IssueRef(
                number=issue.number,
                title=issue.title,
                url=issue.html_url,
                author=issue.user.login if issue.user else "",
                repository=str(self._full_name),
            )

    def _issue(self, number: int) -> Issue:
        if self._repository is None:
            self._repository = self._github.get_repo(self._full_name)
        return self._repository.get_issue(number)

    def _translated(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Turn PyGithub and network errors raised inside the block into ``MlopsError``s."""
        return translated(what, self._settings, NotificationError)


def _to_comment(comment: IssueComment, issue_number: int) -> Comment:
    """Map PyGithub's ``IssueComment`` to ``Comment``, removing the idempotency marker."""
    created = comment.created_at
    return Comment(
        id=comment.id,
        issue_number=issue_number,
        body=_MARKER_AT_END.sub("", comment.body or ""),
        author=comment.user.login if comment.user is not None else "",
        url=comment.html_url or "",
        created_at=created.strftime("%Y-%m-%dT%H:%M:%SZ") if created is not None else "",
    )
