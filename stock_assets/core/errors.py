"""Errors shared by the whole package, so each front end can map them in one place."""

from __future__ import annotations


class UsageError(ValueError):
    """A request that cannot be carried out as typed or configured.

    The CLI maps it to exit code 2, the API to HTTP 422; the message names the offending
    value and what would be valid.
    """
