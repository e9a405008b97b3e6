"""The base of every error that means bad input (a params key, a file): stages report it in one line."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input the user can fix; the message names the file or the params key. Stages exit 2 on it."""
