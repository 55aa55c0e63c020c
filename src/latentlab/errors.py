"""The one error type a user can cause.

Every problem that comes from input (a bad file, a bad shape, an unknown preset, an edit
expression that does not parse) is raised as :class:`LatentlabError` with a one-line message
that names the thing and says what was expected. The CLI prints it without a traceback and
exits with status 2; the web app answers it with a 4xx.
"""

from __future__ import annotations


class LatentlabError(Exception):
    """A user-caused error with a one-line, human message."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
