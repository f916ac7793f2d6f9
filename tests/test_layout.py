"""The layout the README's Architecture section draws, kept true: imports go one way, the loop
never touches the store, and the installed package knows nothing of the benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["agent", "store", "train", "tui", "assets"]


def imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    package = ["sleuth", *path.relative_to(ROOT).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
    return found


def sources(*packages: str) -> list[Path]:
    return [p for package in packages for p in sorted((ROOT / package).rglob("*.py"))]


def test_imports_go_one_way():
    rules = {
        "store": ("sleuth.agent", "sleuth.train", "sleuth.tui"),
        "agent": ("sleuth.train", "sleuth.tui"),
        "train": ("sleuth.tui",),
    }
    for package, forbidden in rules.items():
        for path in sources(package):
            bad = {m for m in imports(path) if m.startswith(forbidden) or m == "textual"}
            bad |= {m for m in imports(path) if m.startswith("textual.")}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_research_loop_never_touches_the_store():
    loop = imports(ROOT / "agent" / "research.py")
    assert not {m for m in loop if m.startswith("sleuth.store")}, sorted(loop)


def test_the_installed_package_knows_nothing_of_the_benchmarks():
    for path in sources(*PACKAGES):
        text = path.read_text(encoding="utf-8").lower()
        assert "hotpot" not in text, f"{path.relative_to(ROOT)} mentions HotpotQA"
