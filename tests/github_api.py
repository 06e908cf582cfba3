"""A fake GitHub REST API on 127.0.0.1 for the GitHub backends' tests: GitHub's wire format, no mocks.

It is a real HTTP server mounted under ``/api/v3`` as GitHub Enterprise is, so PyGithub's URL
prefix handling is exercised too. It speaks the endpoints the backends call:

- issues and comments (``GET/POST/PATCH …/issues/{n}/comments``, ``…/issues/comments/{id}``);
- the Git Data API: refs, commits, trees (``base_tree``, ``recursive``), blobs (base64), and
  ``GET /commits?sha=&path=``. Blob SHAs are git's own; a ref update that is not a
  fast-forward is refused with 422, as GitHub refuses it.

Requests are served one at a time (a lock around the router), as one repository's ref
updates are serialised on GitHub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

PREFIX = "/api/v3"
OWNER, REPO = "acme", "models"
TOKEN = "ghp_test_token_123"
CREATED = "2025-01-31T12:00:00Z"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    """State of the fake API: issues, comments, the requests it saw and failures to inject."""

    base_url: str = ""
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    failures: list[tuple[str, int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    next_id: int = 9000
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_issue(self, number: int, title: str = "Train a model") -> None:
        self.issues[number] = {
            "id": 100 + number,
            "node_id": f"I_{number}",
            "number": number,
            "title": title,
            "body": "spec",
            "state": "open",
            "locked": False,
            "user": {"login": "alice", "id": 2, "type": "User"},
            "labels": [],
            "comments": 0,
            "url": f"{self.base_url}/repos/{OWNER}/{REPO}/issues/{number}",
            "repository_url": f"{self.base_url}/repos/{OWNER}/{REPO}",
            "comments_url": f"{self.base_url}/repos/{OWNER}/{REPO}/issues/{number}/comments",
            "html_url": f"https://github.example/{OWNER}/{REPO}/issues/{number}",
            "created_at": CREATED,
            "updated_at": CREATED,
            "author_association": "OWNER",
        }
        self.comments[number] = []

    def add_comment(self, number: int, body: str, login: str = "issue-mlops[bot]") -> dict[str, Any]:
        self.next_id += 1
        comment = {
            "id": self.next_id,
            "node_id": f"IC_{self.next_id}",
            "body": body,
            "user": {"login": login, "id": 3, "type": "Bot" if login.endswith("[bot]") else "User"},
            "url": f"{self.base_url}/repos/{OWNER}/{REPO}/issues/comments/{self.next_id}",
            "html_url": f"https://github.example/{OWNER}/{REPO}/issues/{number}#issuecomment-{self.next_id}",
            "issue_url": f"{self.base_url}/repos/{OWNER}/{REPO}/issues/{number}",
            "created_at": CREATED,
            "updated_at": CREATED,
            "author_association": "NONE",
        }
        self.comments[number].append(comment)
        self.issues[number]["comments"] += 1
        return comment

    def fail_next(
        self, method: str, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next ``method`` request with ``status`` and GitHub's error body."""
        body = {"message": message, "documentation_url": "https://docs.github.com/rest"}
        self.failures.append((method, status, body, headers or {}))

    def requests(self, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if method is None or s.method == method]

    def route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        for index, (fail_method, status, error, headers) in enumerate(self.failures):
            if fail_method == method:
                del self.failures[index]
                return status, error, headers
        if not path.startswith(PREFIX + "/"):
            return 404, {"message": "Not Found"}, {}
        path = path[len(PREFIX) :]
        if method == "GET" and path == f"/repos/{OWNER}/{REPO}":
            return 200, self._repository(), {}
        if path.startswith(f"/repos/{OWNER}/{REPO}/git/") or path == f"/repos/{OWNER}/{REPO}/commits":
            return self._git(method, path.removeprefix(f"/repos/{OWNER}/{REPO}"), query, body)
        if method == "POST" and path == f"/repos/{OWNER}/{REPO}/issues":
            number = max(self.issues, default=0) + 1
            self.add_issue(number, body["title"])
            self.issues[number].update(
                body=body.get("body", ""),
                labels=[
                    {"name": name, "id": i, "color": "ededed"}
                    for i, name in enumerate(body.get("labels", []))
                ],
                user={"login": "issue-mlops[bot]", "id": 3, "type": "Bot"},
            )
            return 201, self.issues[number], {}
        single = re.fullmatch(rf"/repos/{OWNER}/{REPO}/issues/comments/(\d+)", path)
        if single is not None:
            return self._comment(method, int(single.group(1)), body)
        found = re.fullmatch(rf"/repos/{OWNER}/{REPO}/issues/(\d+)(/comments)?", path)
        if found is None or int(found.group(1)) not in self.issues:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        number = int(found.group(1))
        if not found.group(2) and method == "GET":
            return 200, self.issues[number], {}
        if found.group(2) and method == "POST":
            return 201, self.add_comment(number, body["body"]), {}
        if found.group(2) and method == "GET":
            return self._page(number, query)
        return 404, {"message": "Not Found"}, {}

    def _comment(self, method: str, comment_id: int, body: Any) -> tuple[int, Any, dict[str, str]]:
        for comments in self.comments.values():
            for comment in comments:
                if comment["id"] == comment_id:
                    if method == "PATCH":
                        comment["body"] = body["body"]
                    return 200, comment, {}
        return 404, {"message": "Not Found"}, {}

    def _repository(self) -> dict[str, Any]:
        return {
            "id": 1,
            "node_id": "R_1",
            "name": REPO,
            "full_name": f"{OWNER}/{REPO}",
            "owner": {"login": OWNER, "id": 1, "type": "Organization"},
            "private": True,
            "url": f"{self.base_url}/repos/{OWNER}/{REPO}",
            "html_url": f"https://github.example/{OWNER}/{REPO}",
            "issues_url": f"{self.base_url}/repos/{OWNER}/{REPO}/issues{{/number}}",
            "default_branch": "main",
        }

    def _page(self, number: int, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        items = self.comments[number]
        pages = max(1, -(-len(items) // per_page))
        headers = {}
        if page < pages:
            url = f"{self.base_url}/repos/{OWNER}/{REPO}/issues/{number}/comments?per_page={per_page}"
            headers["Link"] = f'<{url}&page={page + 1}>; rel="next", <{url}&page={pages}>; rel="last"'
        return 200, items[(page - 1) * per_page : page * per_page], headers

    # ---------------------------------------------------------------------------------------
    # Git Data API
    # ---------------------------------------------------------------------------------------

    def init_branch(self, files: dict[str, bytes] | None = None, branch: str = "main") -> str:
        """Give the repository a first commit on ``branch`` with ``files``; return its SHA."""
        tree = self._store_tree({path: self._store_blob(data) for path, data in (files or {}).items()})
        sha = self._store_commit("Initial commit", tree, [])
        self.refs[f"heads/{branch}"] = sha
        return sha

    def files_at(self, ref: str = "heads/main") -> dict[str, bytes]:
        """The files of the commit ``ref`` points at (path -> bytes)."""
        tree = self.trees[self.commits[self.refs[ref]]["tree"]]
        return {path: self.blobs[sha] for path, sha in tree.items()}

    def history(self, ref: str = "heads/main") -> list[dict[str, Any]]:
        """The commits reachable from ``ref`` by first parents, newest first."""
        found, sha = [], self.refs[ref]
        while sha:
            commit = self.commits[sha]
            found.append({"sha": sha, **commit})
            sha = commit["parents"][0] if commit["parents"] else ""
        return found

    def _store_blob(self, data: bytes) -> str:
        sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        self.blobs[sha] = data
        return sha

    def _store_tree(self, entries: dict[str, str]) -> str:
        sha = hashlib.sha1(json.dumps(sorted(entries.items())).encode()).hexdigest()
        self.trees[sha] = dict(entries)
        return sha

    def _store_commit(self, message: str, tree: str, parents: list[str]) -> str:
        sha = hashlib.sha1(json.dumps([message, tree, parents, len(self.commits)]).encode()).hexdigest()
        self.commits[sha] = {"message": message, "tree": tree, "parents": parents}
        return sha

    def _repo_url(self) -> str:
        return f"{self.base_url}/repos/{OWNER}/{REPO}"

    def _commit_json(self, sha: str) -> dict[str, Any]:
        commit = self.commits[sha]
        person = {"name": "issue-mlops", "email": "mlops@example.com", "date": CREATED}
        return {
            "sha": sha,
            "node_id": f"C_{sha[:8]}",
            "url": f"{self._repo_url()}/git/commits/{sha}",
            "html_url": f"https://github.example/{OWNER}/{REPO}/commit/{sha}",
            "message": commit["message"],
            "author": person,
            "committer": person,
            "tree": {"sha": commit["tree"], "url": f"{self._repo_url()}/git/trees/{commit['tree']}"},
            "parents": [{"sha": p, "url": f"{self._repo_url()}/git/commits/{p}"} for p in commit["parents"]],
        }

    def _ref_json(self, ref: str) -> dict[str, Any]:
        sha = self.refs[ref]
        return {
            "ref": f"refs/{ref}",
            "node_id": f"REF_{ref}",
            "url": f"{self._repo_url()}/git/refs/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{self._repo_url()}/git/commits/{sha}"},
        }

    def _tree_json(self, sha: str, recursive: bool) -> dict[str, Any]:
        entries = self.trees[sha]
        items: list[dict[str, Any]] = []
        folders = sorted({"/".join(p.split("/")[:i]) for p in entries for i in range(1, p.count("/") + 1)})
        for path in sorted(entries) + folders:
            if not recursive and "/" in path:
                continue
            if path in entries:
                blob = entries[path]
                items.append(
                    {
                        "path": path,
                        "mode": "100644",
                        "type": "blob",
                        "sha": blob,
                        "size": len(self.blobs[blob]),
                        "url": f"{self._repo_url()}/git/blobs/{blob}",
                    }
                )
            else:
                items.append({"path": path, "mode": "040000", "type": "tree", "sha": "0" * 40})
        return {"sha": sha, "url": f"{self._repo_url()}/git/trees/{sha}", "tree": items, "truncated": False}

    def _git(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        missing = (404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {})
        ref = re.fullmatch(r"/git/refs?/(heads/.+)", path)
        if ref is not None:
            return self._ref(method, path, unquote(ref.group(1)), body)
        found = re.fullmatch(r"/git/(blobs|trees|commits)(?:/([0-9a-f]{40}))?", path)
        if path == "/commits" and method == "GET":
            return self._commits_touching(query)
        if found is None:
            return missing
        kind, sha = found.groups()
        if method == "POST" and sha is None:
            return self._create(kind, body)
        if method != "GET" or sha is None:
            return missing
        if kind == "blobs" and sha in self.blobs:
            data = self.blobs[sha]
            content = base64.b64encode(data).decode()
            return 200, {"sha": sha, "size": len(data), "encoding": "base64", "content": content}, {}
        if kind == "trees" and sha in self.trees:
            return 200, self._tree_json(sha, query.get("recursive", ["0"])[0] not in ("0", "false")), {}
        if kind == "commits" and sha in self.commits:
            return 200, self._commit_json(sha), {}
        return missing

    def _ref(self, method: str, path: str, name: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if name in self.refs and method == "GET":
            return 200, self._ref_json(name), {}
        if name in self.refs and method == "PATCH" and path.startswith("/git/refs/"):
            new = body["sha"]
            if not body.get("force") and not self._descends(new, self.refs[name]):
                return 422, {"message": "Update is not a fast forward", "status": "422"}, {}
            self.refs[name] = new
            return 200, self._ref_json(name), {}
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}

    def _create(self, kind: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if kind == "blobs":
            content = body["content"]
            data = base64.b64decode(content) if body.get("encoding") == "base64" else content.encode()
            sha = self._store_blob(data)
            return 201, {"sha": sha, "url": f"{self._repo_url()}/git/blobs/{sha}"}, {}
        if kind == "trees":
            entries = dict(self.trees[body["base_tree"]]) if body.get("base_tree") else {}
            for item in body["tree"]:
                if item["sha"] not in self.blobs:
                    return 422, {"message": f"Invalid tree info: {item['sha']} is not a blob"}, {}
                entries[item["path"]] = item["sha"]
            return 201, self._tree_json(self._store_tree(entries), True), {}
        if any(parent not in self.commits for parent in body["parents"]) or body["tree"] not in self.trees:
            return 422, {"message": "Invalid parent or tree"}, {}
        sha = self._store_commit(body["message"], body["tree"], list(body["parents"]))
        return 201, self._commit_json(sha), {}

    def _descends(self, sha: str, ancestor: str) -> bool:
        pending = [sha]
        while pending:
            current = pending.pop()
            if current == ancestor:
                return True
            pending.extend(self.commits.get(current, {}).get("parents", []))
        return False

    def _commits_touching(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        start = query.get("sha", ["heads/main"])[0]
        sha = self.refs.get(start if start.startswith("heads/") else f"heads/{start}", start)
        path = query.get("path", [None])[0]
        touching = []
        while sha:
            commit = self.commits[sha]
            parent = commit["parents"][0] if commit["parents"] else None
            mine = self.trees[commit["tree"]].get(path) if path else "x"
            before = self.trees[self.commits[parent]["tree"]].get(path) if parent and path else None
            if path is None or mine != before:
                touching.append({"sha": sha, "url": f"{self._repo_url()}/commits/{sha}", "commit": {}})
            sha = parent or ""
        return 200, touching, {}


def make_handler(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            query = parse_qs(parsed.query)
            fake.seen.append(Seen(self.command, parsed.path, query, dict(self.headers.items()), body))
            with fake.lock:
                status, payload, headers = fake.route(self.command, parsed.path, query, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(fake: FakeGitHub) -> Iterator[FakeGitHub]:
    """Serve ``fake`` on 127.0.0.1 (a free port) until the block ends; sets ``fake.base_url``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
