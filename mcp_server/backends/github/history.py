"""The GitHub history backend: one commit per run on the repository's branch (Git Data API).

The layout is the local backend's (``training_history/{stem}.md``, ``assets/{stem}/…``, the
index ``README.md`` and its rows ``index.json``), so a record renders the same on GitHub.

One commit per record, without a working copy:

1. read the branch's head commit and its tree (``GET git/ref``, ``git/commits``,
   ``git/trees?recursive=1``);
2. compute the index rows: those of ``index.json`` whose record file is still in the tree, the
   front matter of any record file the rows miss, and this record's row;
3. upload the blobs that differ from the tree (``POST git/blobs``), then a tree on top of the
   head's (``POST git/trees`` with ``base_tree``) and a commit whose parent is the head
   (``POST git/commits``);
4. move the branch with ``PATCH git/refs`` and ``force: false``. When another writer moved it
   first, GitHub refuses the update as not a fast-forward (422) and the whole read-compute-write
   starts again from the new head, after a jittered backoff, so concurrent runs never lose a
   record or an index row.

Blob SHAs are computed here (``git hash-object``'s SHA-1 of ``blob {size}``, a NUL byte, then the bytes), so a
record already committed with the same content, files and index makes no commit; its
``commit_sha`` is then the last commit that touched the record.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable

from github import GithubException, InputGitTreeElement
from github.GitCommit import GitCommit
from github.GitRef import GitRef
from github.GitTree import GitTree
from github.Repository import Repository
from urllib3.util import Retry

from mcp_server.backends.base import HistoryBackend
from mcp_server.backends.github.client import open_github, translated
from mcp_server.backends.local.history import local_path, report_file_name, report_folder
from mcp_server.core.models import HistoryCommit, HistoryRecord
from mcp_server.core.rendering.history_markdown import (
    HISTORY_DIR,
    INDEX_DATA_PATH,
    INDEX_PATH,
    asset_name,
    index_row,
    is_record_path,
    read_index_data,
    record_stem,
    render_index,
    render_index_data,
    render_record,
)
from mcp_server.errors import HistoryError, TransientError
from mcp_server.settings import Settings

FILE_MODE = "100644"
# GitHub answers a ref update that is not a fast-forward with 422, and some conflicts with 409.
CONFLICT_STATUSES = (409, 422)


def blob_sha(content: bytes) -> str:
    """Return git's object id of a blob with ``content`` (``git hash-object``: SHA-1, hex).

    Source: the Git book, "Git Internals - Git Objects": the header ``blob {size}``, a NUL byte,
    then the bytes.
    """
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def read_local_source(uri: str) -> bytes:
    """Read a file a record links (a plot) from a ``file://`` URI or a local path.

    Raises:
        HistoryError: the URI has another scheme, or the file cannot be read.
    """
    path = local_path(uri)
    try:
        return path.read_bytes()
    except OSError as err:
        raise HistoryError(f"cannot read {uri!r} to commit it: {err}") from err


class GitHubHistoryBackend(HistoryBackend):
    """Commits run records to ``training_history/`` of ``settings.github_repository`` on GitHub.

    Args:
        settings: ``github_token``, ``github_repository`` (``owner/name``), ``github_api_url``.
        branch: the branch that receives the commits; ``None`` for the repository's default.
        read_source: reads a linked file's bytes from its URI (``file://`` by default).
        max_attempts: read-compute-write rounds before giving up when other writers keep moving
            the branch (each round but the last ends with a refused fast-forward).
        backoff_s: the first wait after a refused update, in seconds; it doubles each round, up
            to 8 s, and is jittered (uniform between half and all of it).
        retry: PyGithub's retry policy of GET requests (see ``client.open_github``).
        seconds_between_requests: PyGithub's pacing of every request (0.25 s, GitHub's advice).
        seconds_between_writes: PyGithub's pacing of writes (1 s, GitHub's advice).

    Raises:
        HistoryError: the token or the repository is not configured.
    """

    def __init__(
        self,
        settings: Settings,
        branch: str | None = None,
        read_source: Callable[[str], bytes] = read_local_source,
        max_attempts: int = 12,
        backoff_s: float = 0.5,
        retry: int | Retry | None = None,
        seconds_between_requests: float = 0.25,
        seconds_between_writes: float = 1.0,
    ) -> None:
        self._settings = settings
        self._full_name = str(settings.github_repository)
        self._github = open_github(
            settings, HistoryError, retry, seconds_between_requests, seconds_between_writes
        )
        self._branch = branch
        self._read_source = read_source
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._repository: Repository | None = None
        self._rows_by_blob: dict[str, dict[str, object]] = {}

    def record_training_history(
        self, record: HistoryRecord, files: dict[str, str] | None = None
    ) -> HistoryCommit:
        """Commit the record, the files it links and the index to the branch, as one commit.

        Args:
            record: the run's record.
            files: relative file name -> source URI (``file://``), e.g.
                ``{"roc_curve.png": "file:///ws/evaluations/run/roc_curve.png"}``; committed as
                ``training_history/assets/{record stem}/{name}`` and linked from the record.

        Returns:
            Where the record landed: ``repository`` is ``owner/name``, ``url`` the record's page
            at that commit. When everything is already committed with the same content, no
            commit is made and ``commit_sha`` is the last commit that touched the record.

        Raises:
            HistoryError: ``started_at`` is not ISO-8601, a file name is unsafe, a file cannot
                be read, the branch does not exist, or GitHub refused a request (401, 403).
            NotFoundError: the repository does not exist or the token cannot read it.
            TransientError: GitHub answered 5xx or 429, is unreachable, or other writers moved
                the branch ``max_attempts`` times in a row; retry later.
        """
        try:
            stem = record_stem(record)
            assets = {asset_name(name): source for name, source in (files or {}).items()}
        except ValueError as err:
            raise HistoryError(f"cannot record {record.record_id!r}: {err}") from err
        record_path = f"{HISTORY_DIR}/{stem}.md"
        links = {name: f"assets/{stem}/{name}" for name in assets}
        markdown = render_record(record, links)
        contents = {record_path: markdown.encode("utf-8")}
        for name, source in assets.items():
            contents[f"{HISTORY_DIR}/assets/{stem}/{name}"] = self._read_source(source)
        row = index_row(f"{stem}.md", markdown)
        message = (
            f"training history: issue #{record.issue.number} attempt {record.attempt} "
            f"{record.status} ({record.record_id})"
        )
        with translated(f"commit {record_path} to {self._full_name}", self._settings, HistoryError):
            return self._commit_with_retries(record_path, contents, row, message)

    def record_report(self, folder: str, markdown: str, files: dict[str, str], message: str) -> HistoryCommit:
        """Commit ``training_history/{folder}/report.md`` and its files as one commit (see the base).

        Raises:
            HistoryError: an unsafe folder or file name, a file that cannot be read, or GitHub
                refused a request.
            NotFoundError: the repository does not exist or the token cannot read it.
            TransientError: GitHub answered 5xx or 429, or the branch kept moving; retry later.
        """
        base = report_folder(folder)
        report_path = f"{base}/report.md"
        contents = {report_path: markdown.encode("utf-8")}
        for name, source in files.items():
            contents[f"{base}/{report_file_name(name)}"] = self._read_source(source)
        with translated(f"commit {report_path} to {self._full_name}", self._settings, HistoryError):
            return self._commit_with_retries(report_path, contents, None, message)

    # -----------------------------------------------------------------------------------------
    # The read-compute-write round
    # -----------------------------------------------------------------------------------------

    def _commit_with_retries(
        self, record_path: str, contents: dict[str, bytes], row: dict[str, object] | None, message: str
    ) -> HistoryCommit:
        repository = self._repo()
        branch = self._branch or repository.default_branch
        for attempt in range(1, self._max_attempts + 1):
            ref, head, tree = self._head(repository, branch)
            entries = {item.path: item.sha for item in tree.tree if item.type == "blob"}
            wanted = dict(contents)
            if row is not None:  # a run record: the index follows it
                rows = self._index_rows(repository, entries, row)
                wanted[INDEX_PATH] = render_index(rows).encode("utf-8")
                wanted[INDEX_DATA_PATH] = render_index_data(rows).encode("utf-8")
            changed = {path: data for path, data in wanted.items() if entries.get(path) != blob_sha(data)}
            if not changed:
                last = repository.get_commits(sha=head.sha, path=record_path)[0].sha
                return self._landed(repository, record_path, last)
            new_tree = repository.create_git_tree(
                [
                    InputGitTreeElement(path, FILE_MODE, "blob", sha=self._upload(repository, data))
                    for path, data in sorted(changed.items())
                ],
                base_tree=tree,
            )
            commit = repository.create_git_commit(message, new_tree, [head])
            try:
                ref.edit(commit.sha, force=False)
            except GithubException as err:
                if err.status not in CONFLICT_STATUSES:
                    raise
                if attempt < self._max_attempts:
                    time.sleep(self._backoff(attempt))
                continue
            return self._landed(repository, record_path, commit.sha)
        raise TransientError(
            f"commit {record_path} to {self._full_name}: the branch moved under {self._max_attempts} "
            "attempts in a row (other runs committing); retry later"
        )

    def _head(self, repository: Repository, branch: str) -> tuple[GitRef, GitCommit, GitTree]:
        """Return the branch's ref (read: its URL is GitHub's ``git/refs/…``), head commit and tree.

        Raises:
            HistoryError: the branch does not exist, or the tree is too large to list at once.
        """
        try:
            ref = repository.get_git_ref(f"heads/{branch}")
            head_sha = ref.object.sha
        except GithubException as err:
            if err.status in (404, 409):
                raise HistoryError(
                    f"{self._full_name} has no branch {branch!r} with a commit (GitHub answered "
                    f"{err.status}); push a first commit to it, or set the branch history goes to"
                ) from err
            raise
        head = repository.get_git_commit(head_sha)
        tree = repository.get_git_tree(head.tree.sha, recursive=True)
        if tree.raw_data.get("truncated"):
            raise HistoryError(
                f"the tree of {self._full_name}@{branch} is too large for GitHub to list at once "
                "(over 100,000 entries); history needs a smaller repository"
            )
        return ref, head, tree

    def _index_rows(
        self, repository: Repository, entries: dict[str, str], row: dict[str, object]
    ) -> list[dict[str, object]]:
        """Return the index rows of the records in ``entries``, with ``row`` in place of its own.

        Rows come from ``index.json`` when its record file is still in the tree; a record file
        the rows miss (an index written by hand, or none at all) is read for its front matter.
        Blobs already read are kept by SHA, so a retried round reads only what changed.
        """
        records = {path.rpartition("/")[2]: sha for path, sha in entries.items() if is_record_path(path)}
        known: dict[str, dict[str, object]] = {}
        if INDEX_DATA_PATH in entries:
            text = self._blob_text(repository, entries[INDEX_DATA_PATH])
            known = {str(r["record_path"]): r for r in read_index_data(text)}
        rows = {str(row["record_path"]): row}
        for name, sha in records.items():
            if name in rows:
                continue
            if name in known:
                rows[name] = known[name]
                continue
            if sha not in self._rows_by_blob:
                self._rows_by_blob[sha] = index_row(name, self._blob_text(repository, sha))
            rows[name] = self._rows_by_blob[sha]
        return list(rows.values())

    def _blob_text(self, repository: Repository, sha: str) -> str:
        blob = repository.get_git_blob(sha)
        return base64.b64decode(blob.content).decode("utf-8", errors="replace")

    def _upload(self, repository: Repository, data: bytes) -> str:
        """Create the blob of ``data`` and return its SHA (checked against git's own)."""
        expected = blob_sha(data)
        created = repository.create_git_blob(base64.b64encode(data).decode("ascii"), "base64")
        if created.sha != expected:
            raise HistoryError(
                f"GitHub stored a blob as {created.sha}, expected {expected}: the upload was altered"
            )
        return expected

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th refused update: doubling, capped, jittered."""
        ceiling = min(8.0, self._backoff_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _landed(self, repository: Repository, record_path: str, sha: str) -> HistoryCommit:
        return HistoryCommit(
            path=record_path,
            commit_sha=sha,
            index_path=INDEX_PATH,
            repository=self._full_name,
            url=f"{repository.html_url}/blob/{sha}/{record_path}",
        )

    def _repo(self) -> Repository:
        if self._repository is None:
            self._repository = self._github.get_repo(self._full_name)
        return self._repository
