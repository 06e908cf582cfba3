"""GitHub webhook deliveries as GitHub sends them, for local runs and tests.

``issue_payload`` and ``comment_payload`` build bodies in the shape of GitHub's ``issues`` and
``issue_comment`` events (the fields the handler reads, with GitHub's names); ``push_payload``
builds a ``push`` event from a real git checkout's commits; ``api_gateway_event`` wraps a signed
body into the API Gateway proxy event the handler takes.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.issue_detector import sign

LOCAL_REPOSITORY = "local/issues"


def read_issue_file(path: Path) -> tuple[str, str]:
    """Read an example issue: the title from a leading ``<!-- title: ... -->`` line, and the body.

    Returns:
        (title, body); the title defaults to the file's stem.
    """
    text = path.read_text()
    match = re.match(r"\s*<!--\s*title:\s*(.*?)\s*-->\s*\n", text)
    if match:
        return match.group(1), text[match.end() :]
    return path.stem.replace("-", " "), text


def _user(login: str) -> dict[str, Any]:
    return {
        "login": login,
        "id": zlib.crc32(login.encode()) % 10**8,
        "type": "User",
        "html_url": f"https://github.com/{login}",
    }


def issue_payload(
    number: int,
    title: str,
    body: str,
    author: str,
    association: str = "OWNER",
    action: str = "labeled",
    label: str = "mlops:train",
    repository: str = LOCAL_REPOSITORY,
    html_url: str | None = None,
) -> dict[str, Any]:
    """Build an ``issues`` event body (``opened`` or ``labeled``) in GitHub's shape."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = [{"id": 1, "name": label, "color": "5319e7", "default": False}]
    payload: dict[str, Any] = {
        "action": action,
        "issue": {
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "html_url": html_url or f"https://github.com/{repository}/issues/{number}",
            "user": _user(author),
            "labels": labels,
            "author_association": association,
            "created_at": now,
            "updated_at": now,
            "comments": 0,
        },
        "repository": {
            "full_name": repository,
            "name": repository.split("/")[-1],
            "owner": _user(repository.split("/")[0]),
        },
        "sender": _user(author),
    }
    if action == "labeled":
        payload["label"] = labels[0]
    return payload


def api_gateway_event(
    secret: bytes,
    event_name: str,
    payload: dict[str, Any],
    delivery_id: str | None = None,
    signature: str | None = None,
) -> dict[str, Any]:
    """Wrap a payload into a signed API Gateway proxy event as GitHub would deliver it.

    Args:
        secret: the webhook secret to sign with.
        event_name: ``X-GitHub-Event`` (issues, issue_comment, ping).
        payload: the JSON body.
        delivery_id: ``X-GitHub-Delivery``; a new UUID when None.
        signature: a signature to send instead of the correct one (tests of forgeries).

    Returns:
        The proxy event: headers, body (the exact signed bytes, as text), isBase64Encoded false.
    """
    body = json.dumps(payload, separators=(",", ":"))
    return {
        "resource": "/webhook",
        "path": "/webhook",
        "httpMethod": "POST",
        "headers": {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/local",
            "X-GitHub-Event": event_name,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature if signature is not None else sign(secret, body.encode()),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def comment_payload(
    issue_number: int,
    title: str,
    comment_id: int,
    body: str,
    author: str,
    created_at: str,
    association: str = "OWNER",
    action: str = "created",
    label: str = "mlops:train",
    repository: str = LOCAL_REPOSITORY,
) -> dict[str, Any]:
    """Build an ``issue_comment`` event body (``created`` or ``edited``) in GitHub's shape."""
    base = issue_payload(issue_number, title, "", author, association, "opened", label, repository)
    issue = base["issue"]
    payload: dict[str, Any] = {
        "action": action,
        "issue": issue,
        "comment": {
            "id": comment_id,
            "body": body,
            "user": _user(author),
            "author_association": association,
            "created_at": created_at,
            "updated_at": created_at,
            "html_url": f"{issue['html_url']}#issuecomment-{comment_id}",
        },
        "repository": base["repository"],
        "sender": _user(author),
    }
    if action == "edited":
        payload["changes"] = {"body": {"from": body}}
    return payload


class GitError(ValueError):
    """A revision range git cannot read (the message is git's own, shortened)."""


def _git(checkout: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {(done.stderr or done.stdout).strip()[:500]}")
    return done.stdout


def push_payload(
    checkout: Path,
    before: str,
    after: str = "HEAD",
    pusher: str = "local-user",
    repository: str = LOCAL_REPOSITORY,
) -> dict[str, Any]:
    """Build the ``push`` event GitHub sends when ``before..after`` reaches the default branch.

    The commits and their added, removed and modified paths come from ``git log`` of the
    checkout; the branch is the checkout's current one, reported as the default branch (in local
    mode the checked-out branch is the one models are built from).

    Args:
        checkout: a git working tree.
        before: the commit the branch was at (e.g. ``HEAD~1``).
        after: the pushed commit.
        pusher: the login of who pushed.
        repository: ``owner/name``.

    Returns:
        The payload, with GitHub's field names (``ref``, ``before``, ``after``, ``repository``
        with ``default_branch``, ``pusher``, ``sender``, ``commits``, ``head_commit``).

    Raises:
        GitError: not a git checkout, or a revision git cannot resolve.
    """
    branch = _git(checkout, "rev-parse", "--abbrev-ref", "HEAD").strip()
    before_id = _git(checkout, "rev-parse", "--verify", f"{before}^{{commit}}").strip()
    after_id = _git(checkout, "rev-parse", "--verify", f"{after}^{{commit}}").strip()
    log = _git(
        checkout,
        "log",
        "--reverse",
        "--no-renames",
        "--name-status",
        "--format=%x00%H%x1f%s",
        f"{before_id}..{after_id}",
    )
    commits = []
    for chunk in log.split("\0")[1:]:
        header, _, files = chunk.partition("\n")
        commit_id, _, message = header.partition("\x1f")
        changes: dict[str, list[str]] = {"A": [], "D": [], "M": []}
        for line in files.splitlines():
            status, _, path = line.partition("\t")
            if path:
                changes.get(status[:1], changes["M"]).append(path)
        commits.append(
            {
                "id": commit_id,
                "message": message,
                "url": f"https://github.com/{repository}/commit/{commit_id}",
                "added": changes["A"],
                "removed": changes["D"],
                "modified": changes["M"],
            }
        )
    owner = repository.split("/")[0]
    return {
        "ref": f"refs/heads/{branch}",
        "before": before_id,
        "after": after_id,
        "created": False,
        "deleted": False,
        "forced": False,
        "repository": {
            "full_name": repository,
            "name": repository.split("/")[-1],
            "owner": _user(owner),
            "default_branch": branch,
        },
        "pusher": {"name": pusher},
        "sender": _user(pusher),
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
    }
