"""The local issue store: issues and their comments as JSON files in the workspace.

One file per issue, ``{home}/issues/{number}.json``::

    {"number": 12, "title": "...", "body": "...", "author": "alice", "labels": ["train"],
     "state": "open", "created_at": "2025-01-31T12:00:00Z",
     "comments": [{"id": 1, "issue_number": 12, "body": "...", "author": "issue-mlops[bot]",
                   "url": "local://issues/12#comment-1", "created_at": "...",
                   "idempotency_key": "exec-1:judge"}]}

Every change happens under one store-wide lock (``{home}/issues/.lock``, see ``files``) and
lands with an atomic write, so concurrent writers in threads or processes lose nothing. Comment
ids increase across the whole store, as GitHub's do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcp_server.backends.base import IssueBackend
from mcp_server.backends.local.files import exclusive, write_json_atomic
from mcp_server.core.models import Comment, IssueRef
from mcp_server.errors import NotFoundError, NotificationError
from mcp_server.settings import Settings

BOT_AUTHOR = "issue-mlops[bot]"
LOCAL_REPOSITORY = "local/issues"


class StoredComment(Comment):
    """A comment as the store keeps it: a ``Comment`` plus the key it was posted with."""

    idempotency_key: str | None = None

    def public(self) -> Comment:
        """Return the comment without its idempotency key."""
        return Comment(**self.model_dump(exclude={"idempotency_key"}))


class LocalIssue(BaseModel):
    """One issue of the local store, with its comments oldest first."""

    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1)
    title: str
    body: str = ""
    author: str = ""
    labels: list[str] = Field(default_factory=list)
    state: Literal["open", "closed"] = "open"
    created_at: str
    comments: list[StoredComment] = Field(default_factory=list)

    def ref(self) -> IssueRef:
        """Return the issue as the ``IssueRef`` runs carry."""
        return IssueRef(
            number=self.number,
            title=self.title,
            url=issue_url(self.number),
            author=self.author,
            repository=LOCAL_REPOSITORY,
        )


def issue_url(number: int) -> str:
    """Return the local URL of issue ``number``: ``local://issues/{number}``."""
    return f"local://issues/{number}"


def utc_now() -> str:
    """Return the current time as ISO-8601 UTC to the second, e.g. ``2025-01-31T12:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalIssueStore(IssueBackend):
    """Issues and comments stored as JSON files under ``settings.home / "issues"``.

    Args:
        settings: ``settings.home`` is the workspace; the folder is created on first write.
    """

    def __init__(self, settings: Settings) -> None:
        self._folder = Path(settings.home).absolute() / "issues"

    def create_issue(
        self, title: str, body: str, author: str = "", labels: list[str] | None = None
    ) -> IssueRef:
        """Open a new issue with the next free number (1 for an empty store).

        Returns:
            The new issue's reference (``url`` is ``local://issues/{number}``).

        Raises:
            NotificationError: the store cannot be written.
        """
        with self._locked():
            number = max(self._numbers(), default=0) + 1
            issue = LocalIssue(
                number=number,
                title=title,
                body=body,
                author=author,
                labels=list(labels or []),
                created_at=utc_now(),
            )
            self._save(issue)
        return issue.ref()

    def get_issue(self, number: int) -> LocalIssue:
        """Return issue ``number`` with its comments.

        Raises:
            NotFoundError: no issue has that number.
        """
        return self._load(number)

    def issue_state(self, issue_number: int) -> str:
        """Return ``open`` or ``closed``.

        Raises:
            NotFoundError: no issue has that number.
        """
        return self._load(issue_number).state

    def open_issue(self, title: str, body: str, labels: list[str]) -> IssueRef:
        """Open a new issue authored by the pipeline (see ``create_issue``)."""
        return self.create_issue(title, body, author="issue-mlops[bot]", labels=labels)

    def set_state(self, issue_number: int, state: Literal["open", "closed"]) -> None:
        """Open or close an issue (``mlops`` and tests; GitHub users close issues on GitHub).

        Raises:
            NotFoundError: no issue has that number.
        """
        with self._locked():
            issue = self._load(issue_number)
            self._save(issue.model_copy(update={"state": state}))

    def list_issues(self) -> list[LocalIssue]:
        """Return every issue, by increasing number."""
        return [self._load(number) for number in sorted(self._numbers())]

    def post_comment(
        self, issue_number: int, body: str, idempotency_key: str | None = None, author: str = ""
    ) -> Comment:
        """Append a comment to the issue, by ``issue-mlops[bot]`` unless ``author`` is given.

        Args:
            issue_number: the issue to comment on.
            body: Markdown text.
            idempotency_key: when a comment was already posted with this key, that comment is
                returned unchanged and nothing is posted.
            author: the login of a person commenting (``mlops comment``); default the bot.

        Returns:
            The comment: ``id`` unique across the store, ``url`` ``local://issues/{n}#comment-{id}``,
            ``created_at`` ISO-8601 UTC.

        Raises:
            NotFoundError: the issue does not exist.
            NotificationError: the store cannot be written.
        """
        with self._locked():
            issue = self._load(issue_number)
            if idempotency_key is not None:
                for existing in issue.comments:
                    if existing.idempotency_key == idempotency_key:
                        return existing.public()
            comment_id = self._next_comment_id()
            comment = StoredComment(
                id=comment_id,
                issue_number=issue_number,
                body=body,
                author=author or BOT_AUTHOR,
                url=f"{issue_url(issue_number)}#comment-{comment_id}",
                created_at=utc_now(),
                idempotency_key=idempotency_key,
            )
            issue.comments.append(comment)
            self._save(issue)
        return comment.public()

    def list_comments(self, issue_number: int) -> list[Comment]:
        """Return the issue's comments, oldest first.

        Raises:
            NotFoundError: the issue does not exist.
        """
        return [comment.public() for comment in self._load(issue_number).comments]

    def update_comment(self, issue_number: int, comment_id: int, body: str) -> Comment:
        """Replace a comment's body (an edited status comment), keeping its id and key.

        Raises:
            NotFoundError: the issue or the comment does not exist.
            NotificationError: the store cannot be written.
        """
        with self._locked():
            issue = self._load(issue_number)
            for index, existing in enumerate(issue.comments):
                if existing.id == comment_id:
                    issue.comments[index] = existing.model_copy(update={"body": body})
                    self._save(issue)
                    return issue.comments[index].public()
        raise NotFoundError(
            f"comment {comment_id} not found on local issue #{issue_number}; "
            f"list its comments with list_comments({issue_number})"
        )

    # -----------------------------------------------------------------------------------------
    # Files
    # -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store-wide lock (``{folder}/.lock``), excluding threads and processes alike.

        Raises:
            NotificationError: the store's folder or lock cannot be created.
        """
        try:
            lock = exclusive(self._folder / ".lock")
            lock.acquire()
        except OSError as err:
            raise NotificationError(f"cannot open the local issue store {self._folder}: {err}") from err
        try:
            yield
        finally:
            lock.release()

    def _path(self, number: int) -> Path:
        return self._folder / f"{number}.json"

    def _numbers(self) -> list[int]:
        if not self._folder.is_dir():
            return []
        return [int(path.stem) for path in self._folder.glob("*.json") if path.stem.isdigit()]

    def _next_comment_id(self) -> int:
        """Return 1 + the largest comment id in the store (caller holds the lock)."""
        ids = [comment.id for number in self._numbers() for comment in self._load(number).comments]
        return max(ids, default=0) + 1

    def _load(self, number: int) -> LocalIssue:
        """Read issue ``number``.

        Raises:
            NotFoundError: the file does not exist.
            NotificationError: the file is not a valid issue.
        """
        path = self._path(number)
        try:
            return LocalIssue.model_validate_json(path.read_bytes())
        except FileNotFoundError as err:
            raise NotFoundError(
                f"local issue #{number} not found in {self._folder}; create it with `mlops run ISSUE.md`"
            ) from err
        except (OSError, ValidationError) as err:
            raise NotificationError(f"cannot read local issue #{number} from {path}: {err}") from err

    def _save(self, issue: LocalIssue) -> None:
        """Write the issue atomically.

        Raises:
            NotificationError: the store is not writable.
        """
        path = self._path(issue.number)
        try:
            write_json_atomic(path, issue.model_dump(mode="json"))
        except OSError as err:
            raise NotificationError(f"cannot write local issue #{issue.number} to {path}: {err}") from err
