"""Issue (GitHub) tools: post_comment, list_comments."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from mcp_server.backends.base import Backends
from mcp_server.core.models import Comment
from mcp_server.core.rendering.markdown_text import fit_comment
from mcp_server.settings import Settings
from mcp_server.tools.guard import READ_ONLY, WRITE, guarded

IssueNumber = Annotated[int, Field(ge=1, le=2**31 - 1, description="issue number")]
#: Markdown of a comment; longer than GitHub's 65,536 characters, it is cut (and says so).
CommentBody = Annotated[
    str,
    Field(min_length=1, max_length=1_048_576, description="Markdown text, cut to 65,536 characters"),
]


def register(server: MCPServer, backends: Backends, settings: Settings) -> None:
    """Register the issue tools on ``server``."""

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def post_comment(
        issue_number: IssueNumber,
        body: CommentBody,
        idempotency_key: Annotated[
            str | None,
            Field(
                max_length=200,
                description=("when set, a second call with the same key returns the first comment"),
            ),
        ] = None,
    ) -> Comment:
        """Post a Markdown comment on an issue (GitHub, or the local issue store).

        GitHub caps a comment at 65,536 characters: a longer body is cut there, with a note
        saying how much was left out.

        Returns:
            Comment: id, issue_number, body, author, url, created_at.

        Raises:
            NotFoundError: the issue does not exist.
            TransientError: GitHub is unavailable or rate-limited; retry later.
        """
        return backends.issues.post_comment(issue_number, fit_comment(body), idempotency_key)

    @server.tool(annotations=WRITE)
    @guarded(settings, writes=True)
    def upsert_comment(
        issue_number: IssueNumber,
        key: Annotated[
            str, Field(min_length=1, max_length=200, description="identifies the comment, e.g. status:RUN")
        ],
        body: CommentBody,
    ) -> Comment:
        """Post the issue's comment for ``key``, or edit it in place when it exists.

        The run's status comment uses this: one comment per run, updated as states change.
        A body over GitHub's 65,536 characters is cut there, with a note.

        Returns:
            Comment: id, body, url.

        Raises:
            NotFoundError: the issue does not exist.
            TransientError: GitHub is unavailable or rate-limited; retry later.
        """
        body = fit_comment(body)
        comment = backends.issues.post_comment(issue_number, body, key)
        if comment.body.strip() == body.strip():
            return comment
        return backends.issues.update_comment(issue_number, comment.id, body)

    @server.tool(annotations=READ_ONLY)
    @guarded(settings, writes=False)
    def list_comments(issue_number: IssueNumber) -> list[Comment]:
        """List an issue's comments, oldest first.

        Returns:
            A list of Comment (id, body, author, url, created_at).

        Raises:
            NotFoundError: the issue does not exist.
        """
        return backends.issues.list_comments(issue_number)
