"""Options as one schema: every setting and every training option is a dataclass field that
carries its default, its help text, the values it may take and its bounds. The settings
(settings.py: config.toml's template, `sleuth config`, the Settings screen) and the training
configuration (train/config.py: `sleuth train`'s flags) are both read off these fields, and
both are checked by `check` here, so a default or a bound is written once."""

from __future__ import annotations

import math
from dataclasses import Field, field
from typing import Any


def option(
    default: Any,
    help: str,
    choices: tuple | None = None,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
) -> Any:
    """A field with its help text, allowed values and bounds. A number with no `at_least`
    must be positive."""
    return field(
        default=default,
        metadata={"help": help, "choices": choices, "at_least": at_least, "at_most": at_most},
    )


def check(name: str, value: Any, spec: Field) -> str | None:
    """Why `value` may not be option `name` (None: it may), in words that name the limit."""
    meta = spec.metadata
    if meta.get("choices") and value not in meta["choices"]:
        return f"{name} must be one of {', '.join(map(str, meta['choices']))}, not {value!r}"
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, not {value!r}"
    low, high = meta.get("at_least"), meta.get("at_most")
    if low is None and value <= 0:
        return f"{name} must be positive"
    if low is not None and value < low:
        return f"{name} must be at least {low:,}, not {value:,}"
    if high is not None and value > high:
        return f"{name} must be at most {high:,}, not {value:,}"
    return None
