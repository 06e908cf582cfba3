"""GitHub webhook payloads, as far as the pipeline reads them: typed, bounded, checked. Pure.

GitHub's ``issues``, ``issue_comment`` and ``push`` events carry much more; only the fields read here
are declared (others are ignored). A delivery whose fields have the wrong shape is refused with
400 and the reason (``shape_problems``), never half-read.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from mcp_server.core.spec.bounds import MAX_BODY_CHARS, preview

#: The largest webhook body accepted, in bytes. An issue or comment body is at most 65,536
#: characters (up to 4 bytes each in UTF-8, more once JSON-escaped), and an ``issue_comment``
#: event carries both the issue's body and the comment's.
MAX_DELIVERY_BYTES = 1024 * 1024

Text = Annotated[StrictStr, Field(max_length=MAX_BODY_CHARS)]
Name = Annotated[StrictStr, Field(max_length=256)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Event):
    """A GitHub account: ``login`` and ``type`` (``User``, ``Bot``, ``Organization``)."""

    login: Name
    type: Name = "User"


class Label(_Event):
    """An issue label."""

    name: Name


class Issue(_Event):
    """The issue of an ``issues`` or ``issue_comment`` event."""

    number: StrictInt = Field(ge=1, le=2**31 - 1)
    title: Text = ""
    body: Text | None = None
    user: User
    labels: list[Label] = Field(default_factory=list, max_length=100)
    author_association: Name = "NONE"
    html_url: Annotated[StrictStr, Field(max_length=2048)] = ""
    state: Name = "open"


class Repository(_Event):
    """The repository the event belongs to (``owner/name``)."""

    full_name: Name


class IssuesEvent(_Event):
    """An ``issues`` event (``opened``, ``labeled``, ``edited``, ...)."""

    action: Name
    issue: Issue
    label: Label | None = None
    repository: Repository | None = None


class IssueComment(_Event):
    """The comment of an ``issue_comment`` event."""

    id: StrictInt = Field(ge=1)
    body: Text | None = None
    user: User
    author_association: Name = "NONE"
    created_at: Name = ""


class IssueCommentEvent(_Event):
    """An ``issue_comment`` event (``created``, ``edited``, ``deleted``)."""

    action: Name
    issue: Issue
    comment: IssueComment
    repository: Repository | None = None


#: The longest file path read from a push (GitHub's paths are at most 4,096 bytes).
FilePath = Annotated[StrictStr, Field(max_length=4096)]


class PushRepository(Repository):
    """The repository of a ``push`` event, with its default branch."""

    default_branch: Name


class PushCommit(_Event):
    """A pushed commit: its id, message, and the paths it added, removed and modified."""

    id: Name
    message: Text = ""
    added: list[FilePath] = Field(default_factory=list, max_length=10_000)
    removed: list[FilePath] = Field(default_factory=list, max_length=10_000)
    modified: list[FilePath] = Field(default_factory=list, max_length=10_000)

    @property
    def paths(self) -> list[str]:
        """Every path the commit touched (added, removed or modified)."""
        return [*self.added, *self.removed, *self.modified]


class Pusher(_Event):
    """Who pushed (``pusher`` is a git identity: a name, not a login)."""

    name: Name


class PushEvent(_Event):
    """A ``push`` event: a branch moved from ``before`` to ``after``.

    ``commits`` lists at most 2,048 commits (GitHub's limit); ``deleted`` is true when the push
    removed the branch.
    """

    ref: Name
    before: Name = ""
    after: Name = ""
    deleted: bool = False
    repository: PushRepository
    pusher: Pusher
    sender: User | None = None
    commits: list[PushCommit] = Field(default_factory=list, max_length=2048)

    @property
    def branch(self) -> str:
        """The branch pushed to (``refs/heads/`` removed), or the whole ref for a tag."""
        return self.ref.removeprefix("refs/heads/")

    @property
    def paths(self) -> list[str]:
        """Every path the pushed commits touched, each once, in order of appearance."""
        return list(dict.fromkeys(path for commit in self.commits for path in commit.paths))


EventKind = Literal["issues", "issue_comment", "push"]


def parse_event(kind: EventKind, payload: object) -> IssuesEvent | IssueCommentEvent | PushEvent:
    """Check a decoded delivery against the shape of its event.

    Args:
        kind: ``X-GitHub-Event`` (``issues``, ``issue_comment`` or ``push``).
        payload: the decoded JSON body.

    Returns:
        The typed event.

    Raises:
        ValueError: the body is not an object, or a field read here has the wrong shape; the
            message lists at most 5 fields with what was expected (values quoted in at most 60
            characters).
    """
    if not isinstance(payload, dict):
        raise ValueError(f"the body must be a JSON object, not {type(payload).__name__}")
    models: dict[str, type[IssuesEvent | IssueCommentEvent | PushEvent]] = {
        "issues": IssuesEvent,
        "issue_comment": IssueCommentEvent,
        "push": PushEvent,
    }
    try:
        return models[kind].model_validate(payload)
    except ValidationError as err:
        raise ValueError(shape_problems(err)) from err


def shape_problems(err: ValidationError) -> str:
    """Word a payload's validation errors: ``issue.number: Input should be a valid integer (got 'abc')``."""
    problems = []
    for item in err.errors(include_url=False)[:5]:
        path = ".".join(str(p) for p in item["loc"]) or "(body)"
        got = "" if item["type"] == "missing" else f" (got {preview(item.get('input'), 60)})"
        problems.append(f"{path}: {item['msg']}{got}")
    more = err.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
