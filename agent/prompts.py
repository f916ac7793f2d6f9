"""Prompts live as text files in assets/prompts/; this module loads and fills them.

A file of the same name in the user's config folder (`prompts/NAME.txt` beside config.toml)
takes the shipped one's place: a bigger model may want fewer words, another language other
ones. Prompts are read when used, so an edit applies to the next question.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from sleuth.store import app_dirs


@cache
def _shipped(name: str) -> str:
    return resources.files("sleuth.assets").joinpath("prompts", f"{name}.txt").read_text("utf-8")


def template(name: str) -> str:
    """The text of prompt `name`: the user's own, if they have one, else the shipped one."""
    own = app_dirs().config / "prompts" / f"{name}.txt"
    if own.is_file():
        return own.read_text("utf-8")
    return _shipped(name)


def render(name: str, **values: object) -> str:
    """A prompt with its {placeholders} filled (values are inserted verbatim, never parsed)."""
    return template(name).format_map(values).strip()
