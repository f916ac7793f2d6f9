"""The agent's errors. Each message is one sentence that says what to do."""

from __future__ import annotations


class AgentError(Exception):
    """Base of the errors a user can cause or fix (bad config, missing model, bad input)."""


class ModelError(AgentError):
    """A missing, corrupt or unloadable model, or an unreachable model server."""


class Cancelled(AgentError):  # noqa: N818 - a state, not a failure
    """The user cancelled; whatever was found so far is kept."""
