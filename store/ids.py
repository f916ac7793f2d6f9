"""Ids and seeds as the command line reads them: whole numbers SQLite (and llama.cpp) can hold,
checked before any query sees them, so a mistyped id is one sentence, not an OverflowError."""

from __future__ import annotations

import argparse

MAX_ID = 2**63 - 1  # SQLite's largest integer key
MAX_SEED = 2**31 - 1


def row_id(text: str) -> int:
    """An id on the command line (answer, session, model, training run): a whole number SQLite
    can hold, checked before any query sees it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (a whole number)") from None
    if not 1 <= value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"{text} is not an id: ids run from 1 to {MAX_ID}")
    return value


def seed(text: str) -> int:
    """A sampling seed: a whole number from 0 to 2**31 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed (a whole number)") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is not a seed: seeds run from 0 to {MAX_SEED}")
    return value
