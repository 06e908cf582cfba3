"""The GitHub client both GitHub backends share: PyGithub's ``Github``, its retry policy, and errors.

Errors: GitHub's 404/410 become ``NotFoundError``; 5xx, 429, rate limits and network failures
become ``TransientError`` (the workflow's ``Retry`` matches it); anything else is the
backend's own error class (``NotificationError`` for issues, ``HistoryError`` for history).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests
from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException
from urllib3.util import Retry

from mcp_server.errors import MlopsError, NotFoundError, TransientError
from mcp_server.settings import Settings


def default_retry() -> Retry:
    """Return the retry policy of GitHub requests: 3 retries of GET on 5xx and rate limits.

    Waits at most 30 seconds for a rate limit reset; a longer wait raises at once, as a
    ``TransientError``, so the workflow's own ``Retry`` takes over.
    """
    return GithubRetry(
        total=3,
        backoff_factor=0.5,
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        secondary_rate_wait=30,
        max_rate_limit_wait=30,
    )


def open_github(
    settings: Settings,
    error: type[MlopsError],
    retry: int | Retry | None = None,
    seconds_between_requests: float = 0.25,
    seconds_between_writes: float = 1.0,
) -> Github:
    """Return a PyGithub client for ``settings.github_api_url`` with the token of ``settings``.

    Args:
        settings: ``github_token``, ``github_repository`` (``owner/name``) and
            ``github_api_url`` (``https://api.github.com``, or ``https://HOST/api/v3``).
        error: the error raised when the token or the repository is not configured.
        retry: PyGithub's retry policy: ``None`` for ``default_retry()``, ``0`` for no retries,
            or a ``urllib3`` ``Retry``.
        seconds_between_requests: PyGithub's pacing of every request, by default what GitHub
            asks of integrations to avoid secondary rate limits (0.25 s).
        seconds_between_writes: the same for writes (1 s).

    Raises:
        MlopsError: (of class ``error``) the token or the repository is not configured.
    """
    if not settings.github_token or not settings.github_repository:
        raise error(
            "the GitHub backends need a token and a repository; set GITHUB_TOKEN and "
            "GITHUB_REPOSITORY=owner/name, or unset both to use the local issue store and history"
        )
    return Github(
        auth=Auth.Token(settings.github_token),
        base_url=settings.github_api_url,
        retry=default_retry() if retry is None else retry,
        timeout=15,
        per_page=100,
        seconds_between_requests=seconds_between_requests,
        seconds_between_writes=seconds_between_writes,
    )


@contextlib.contextmanager
def translated(what: str, settings: Settings, error: type[MlopsError]) -> Iterator[None]:
    """Turn PyGithub and network errors raised inside the block into ``MlopsError``s.

    Args:
        what: the operation, for the message (e.g. ``"comment on acme/models#12"``).
        settings: where GitHub is (``github_api_url``) and the repository, for the message.
        error: the class of refusals (4xx other than 404/410/429).

    Raises:
        TransientError: 5xx, 429, a rate limit, or GitHub unreachable.
        NotFoundError: 404 or 410.
        MlopsError: (of class ``error``) any other refusal.
    """
    try:
        yield
    except GithubException as err:
        raise error_for(err, what, settings, error) from err
    except requests.RequestException as err:
        raise TransientError(
            f"{what}: GitHub at {settings.github_api_url} is unreachable ({err}); retry later"
        ) from err


def error_for(err: GithubException, what: str, settings: Settings, error: type[MlopsError]) -> MlopsError:
    """Return the ``MlopsError`` of a GitHub error answer (see ``translated``)."""
    status = err.status
    message = err.message or (err.data.get("message") if isinstance(err.data, dict) else None) or ""
    if isinstance(err, RateLimitExceededException) or status == 429 or status >= 500:
        return TransientError(f"{what}: GitHub answered {status} {message!r}; retry later")
    if status in (404, 410):
        return NotFoundError(
            f"{what}: GitHub answered {status} {message!r}; check the issue number and that the "
            f"token can read {settings.github_repository}"
        )
    return error(f"{what}: GitHub answered {status} {message!r}")
