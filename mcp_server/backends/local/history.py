"""The local history backend: records committed to a git repository with the real ``git``.

Layout inside the repository::

    training_history/README.md                          the index, rebuilt on every write
    training_history/index.json                         the index's rows, machine-readable
    training_history/{date}-issue-{n}-{record_id}.md    one record per execution and attempt
    training_history/assets/{record stem}/{name}        files the record links (plots)

Writing a record, rebuilding the index and committing happen under an exclusive ``flock`` on
a lock file inside the repository's git folder, so concurrent writers (threads or processes)
never lose a record or an index row. The index is rebuilt from the front matter of every
record file rather than edited, so it always lists exactly the records on disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from mcp_server.backends.base import HistoryBackend
from mcp_server.backends.local.files import exclusive, write_text_atomic
from mcp_server.core.models import HistoryCommit, HistoryRecord
from mcp_server.core.rendering.history_markdown import (
    HISTORY_DIR,
    INDEX_DATA_PATH,
    INDEX_PATH,
    asset_name,
    index_row,
    record_stem,
    render_index,
    render_index_data,
    render_record,
)
from mcp_server.errors import HistoryError
from mcp_server.settings import Settings

LOCK_NAME = "mlops-history.lock"
GIT_USER = ("issue-mlops", "mlops@localhost")

_README = """# Training history

This repository receives one commit per pipeline run: the run's record under
`training_history/` and an updated index in `training_history/README.md`.
"""

_init_lock = threading.Lock()


class GitHistoryBackend(HistoryBackend):
    """Commits run records as Markdown to a local git repository.

    Args:
        settings: ``settings.history_repo_path`` is the repository; it is created with
            ``git init``, a README and an initial commit on first use.
    """

    def __init__(self, settings: Settings) -> None:
        self._root = Path(settings.history_repo_path).absolute()
        self._git_dir: Path | None = None

    @property
    def root(self) -> Path:
        """The repository's working tree."""
        return self._root

    def record_training_history(
        self, record: HistoryRecord, files: dict[str, str] | None = None
    ) -> HistoryCommit:
        """Write the record and its files, rebuild the index and commit them.

        Args:
            record: the run's record.
            files: relative file name -> source URI (``file://`` or a local path), e.g.
                ``{"roc_curve.png": "file:///ws/evaluations/run/roc_curve.png"}``; copied to
                ``training_history/assets/{record stem}/{name}`` and linked from the record.

        Returns:
            Where the record landed. When the record, its files and the index are already
            committed with the same content, no commit is made and ``commit_sha`` is the
            commit that last touched the record.

        Raises:
            HistoryError: ``started_at`` is not ISO-8601, a file name is unsafe, a source file
                cannot be read, or a git command fails (the message carries git's stderr).
        """
        try:
            stem = record_stem(record)
        except ValueError as err:
            raise HistoryError(f"cannot name the record of {record.record_id!r}: {err}") from err
        try:
            assets = {asset_name(name): source for name, source in (files or {}).items()}
        except ValueError as err:
            raise HistoryError(str(err)) from err
        self._ensure_repository()
        record_path = f"{HISTORY_DIR}/{stem}.md"
        with self._locked():
            asset_paths = self._copy_assets(stem, assets)
            links = {name: f"assets/{stem}/{name}" for name in assets}
            _write_text(self._root / record_path, render_record(record, links))
            rows = self._index_rows()
            _write_text(self._root / INDEX_PATH, render_index(rows))
            _write_text(self._root / INDEX_DATA_PATH, render_index_data(rows))
            paths = [record_path, INDEX_PATH, INDEX_DATA_PATH, *asset_paths]
            sha = self._commit(paths, _message(record), record_path)
        return HistoryCommit(
            path=record_path, commit_sha=sha, index_path=INDEX_PATH, repository=str(self._root)
        )

    def record_report(self, folder: str, markdown: str, files: dict[str, str], message: str) -> HistoryCommit:
        """Write ``training_history/{folder}/report.md`` and its files, and commit them (see the base).

        Raises:
            HistoryError: an unsafe folder or file name, a source that cannot be read, or git failed.
        """
        base = report_folder(folder)
        names = {report_file_name(name): source for name, source in files.items()}
        self._ensure_repository()
        report_path = f"{base}/report.md"
        with self._locked():
            paths = [report_path]
            for name, source in names.items():
                target = self._root / base / name
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(local_path(source), target)
                except OSError as err:
                    raise HistoryError(f"cannot copy {source!r} to {base}/{name}: {err}") from err
                paths.append(f"{base}/{name}")
            _write_text(self._root / report_path, markdown)
            sha = self._commit(paths, message, report_path)
        return HistoryCommit(
            path=report_path, commit_sha=sha, index_path=INDEX_PATH, repository=str(self._root)
        )

    # -----------------------------------------------------------------------------------------
    # Repository
    # -----------------------------------------------------------------------------------------

    def _ensure_repository(self) -> None:
        """Create the repository (init, identity, README, first commit) unless it exists.

        Other threads wait on ``_init_lock`` until the first commit exists, so no record can
        become the root commit ahead of the README.
        """
        with _init_lock:
            if self._git_dir is not None:
                return
            self._root.mkdir(parents=True, exist_ok=True)
            if not (self._root / ".git").exists():
                self._init()
            git_dir = Path(self._git("rev-parse", "--absolute-git-dir").strip())
            with _flock(git_dir / LOCK_NAME):
                if self._git("rev-parse", "--verify", "--quiet", "HEAD", check=False) == "":
                    readme = self._root / "README.md"
                    if not readme.exists():
                        _write_text(readme, _README)
                    self._git("add", "--", "README.md")
                    self._git(
                        "-c", "commit.gpgsign=false", "commit", "-q", "-m", "Initialise training history"
                    )
            self._git_dir = git_dir

    def _init(self) -> None:
        try:
            self._git("init", "--quiet", "--initial-branch=main")
        except HistoryError:
            if not (self._root / ".git" / "HEAD").exists():  # another process may have won
                raise
        self._git("config", "user.name", GIT_USER[0])
        self._git("config", "user.email", GIT_USER[1])

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold the repository's exclusive lock (``flock`` on ``.git/mlops-history.lock``)."""
        git_dir = self._git_dir if self._git_dir is not None else self._root / ".git"
        return _flock(git_dir / LOCK_NAME)

    def _commit(self, paths: list[str], message: str, record_path: str) -> str:
        """Stage ``paths`` and commit them alone; return the new (or the existing) SHA."""
        self._git("add", "--", *paths)
        staged = subprocess.run(
            ["git", "diff", "--cached", "--quiet", "--", *paths], cwd=self._root, env=_git_env(), check=False
        )
        if staged.returncode == 0:
            return self._git("log", "-1", "--format=%H", "--", record_path).strip()
        if staged.returncode != 1:
            raise HistoryError(f"git diff --cached failed in {self._root} (exit {staged.returncode})")
        self._git("-c", "commit.gpgsign=false", "commit", "--quiet", "-m", message, "--", *paths)
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str, check: bool = True) -> str:
        """Run ``git ARGS`` in the repository and return its stdout.

        Raises:
            HistoryError: git is missing or (with ``check``) exits non-zero; carries stderr.
        """
        try:
            done = subprocess.run(
                ["git", *args], cwd=self._root, env=_git_env(), capture_output=True, text=True, check=False
            )
        except OSError as err:
            raise HistoryError(f"cannot run git in {self._root}: {err}; install git and retry") from err
        if check and done.returncode != 0:
            raise HistoryError(
                f"git {' '.join(args)} failed in {self._root} (exit {done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout

    # -----------------------------------------------------------------------------------------
    # Files
    # -----------------------------------------------------------------------------------------

    def _copy_assets(self, stem: str, assets: dict[str, str]) -> list[str]:
        """Copy each source to ``training_history/assets/{stem}/{name}``; return the paths."""
        paths = []
        for name, source in assets.items():
            relative = f"{HISTORY_DIR}/assets/{stem}/{name}"
            target = self._root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(local_path(source), target)
            except OSError as err:
                raise HistoryError(f"cannot copy {source!r} to {relative}: {err}") from err
            paths.append(relative)
        return paths

    def _index_rows(self) -> list[dict[str, object]]:
        """Rebuild the index rows from the front matter of every record file on disk."""
        rows = []
        for path in sorted((self._root / HISTORY_DIR).glob("*.md")):
            if path.name == "README.md":
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except OSError:
                text = ""
            rows.append(index_row(path.name, text))
        return rows


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold the repository's exclusive history lock (threads and processes alike).

    Raises:
        HistoryError: the lock file cannot be opened.
    """
    try:
        lock = exclusive(path)
        lock.acquire()
    except OSError as err:
        raise HistoryError(f"cannot open the history lock {path}: {err}") from err
    try:
        yield
    finally:
        lock.release()


def _message(record: HistoryRecord) -> str:
    return (
        f"training history: issue #{record.issue.number} attempt {record.attempt} "
        f"{record.status} ({record.record_id})"
    )


def local_path(uri: str) -> Path:
    """Return the local file a ``file://`` URI (or a plain path) names.

    Raises:
        HistoryError: the URI has another scheme (e.g. ``s3://``).
    """
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(unquote(parsed.path)))
    if parsed.scheme == "":
        return Path(uri)
    raise HistoryError(f"cannot copy {uri!r}: this history backend reads file:// URIs only")


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically.

    Raises:
        HistoryError: the folder is not writable.
    """
    try:
        write_text_atomic(path, text)
    except OSError as err:
        raise HistoryError(f"cannot write {path}: {err}") from err


def _git_env() -> dict[str, str]:
    """The environment of git commands: the bot's identity, no prompts, no pager."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": GIT_USER[0],
        "GIT_AUTHOR_EMAIL": GIT_USER[1],
        "GIT_COMMITTER_NAME": GIT_USER[0],
        "GIT_COMMITTER_EMAIL": GIT_USER[1],
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
    }


def report_folder(folder: str) -> str:
    """``training_history/{folder}`` after checking ``folder`` is a plain relative path.

    Raises:
        HistoryError: the folder is empty, absolute, or has ``..``, a backslash or an unusual
            character.
    """
    parts = folder.strip("/").split("/")
    if (
        not folder
        or folder.startswith("/")
        or any(not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", p) for p in parts)
    ):
        raise HistoryError(f"report folder {folder[:100]!r} must be a relative path of plain names")
    return f"{HISTORY_DIR}/{'/'.join(parts)}"


def report_file_name(name: str) -> str:
    """Check a report file's relative name (``plots/x.png``); return it.

    Raises:
        HistoryError: an absolute name, ``..`` or an unusual character.
    """
    parts = name.split("/")
    if len(parts) > 3 or any(not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", p) for p in parts):
        raise HistoryError(f"report file name {name[:100]!r} must be a relative path of plain names")
    return name
