"""GitHub backends through PyGithub: issues and comments (``issues``), history commits (``history``).

The factory chooses them when ``GITHUB_TOKEN`` and ``GITHUB_REPOSITORY`` are set, in local and
AWS mode alike; ``client`` holds the shared PyGithub client and error translation.
"""
