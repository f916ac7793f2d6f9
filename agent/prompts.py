"""Prompts live as text files in assets/prompts/; this module loads and fills them."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def template(name: str) -> str:
    """The text of assets/prompts/<name>.txt."""
    return resources.files("sleuth.assets").joinpath("prompts", f"{name}.txt").read_text("utf-8")


def render(name: str, **values: object) -> str:
    """A prompt with its {placeholders} filled (values are inserted verbatim, never parsed)."""
    return template(name).format_map(values).strip()
