"""The trainer's errors; each message is one sentence that says what to do. No torch here, so
the command line can catch them without loading it."""

from __future__ import annotations


class TrainingError(Exception):
    """Training cannot start or go on."""


class TrainError(TrainingError):
    """Too little data, no CUDA, nothing to resume."""


class TrainConfigError(TrainingError, ValueError):
    """A configuration value that cannot work; the message names it."""


class ModelIOError(TrainingError):
    """A model or adapter that cannot be loaded or written."""
