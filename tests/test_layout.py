"""The layout the README's Architecture section draws, kept true: imports go one way and never
in a circle, the research run reaches the database only off the event loop, no file grows
past what a reader takes in at once, and the installed package knows nothing of the
benchmarks."""

from __future__ import annotations

import ast
import re
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
            found |= {f"{module}.{alias.name}" for alias in node.names}  # submodules, if any
    return found


def module_name(path: Path) -> str:
    parts = ["sleuth", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


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


def test_no_module_imports_one_that_imports_it_back():
    """At any depth: a cycle of imports, top-level or inside a function, is a knot a newcomer
    has to untie before changing either side."""
    files = {module_name(p): p for p in sources(*PACKAGES)}
    graph = {
        name: {m for m in imports(path) if m in files and m != name} for name, path in files.items()
    }
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in trail:
                cycles.append(trail[trail.index(target) :] + [target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_research_loop_imports_nothing_of_the_store():
    for path in (ROOT / "agent" / "research").glob("*.py"):
        if path.stem in ("assistant", "recorder"):  # they join the loop to the store
            continue
        found = {m for m in imports(path) if m.startswith("sleuth.store")}
        assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"


def test_no_file_is_longer_than_a_reader_takes_in_at_once():
    for path in sources("agent", "store", "train", "tui"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 450, f"{path.relative_to(ROOT)} has {lines} lines"


def test_the_installed_package_knows_nothing_of_the_benchmarks():
    for path in sources(*PACKAGES):
        text = path.read_text(encoding="utf-8").lower()
        assert "hotpot" not in text, f"{path.relative_to(ROOT)} mentions HotpotQA"


class OffTheLoopOnly:
    """A store area whose every method call fails if it runs on a thread with a running event
    loop: the research run must reach the database only through its worker threads."""

    def __init__(self, area, calls: list[str], wrong: list[str]):
        self._area, self._calls, self._wrong = area, calls, wrong

    def __getattr__(self, name):
        import asyncio

        value = getattr(self._area, name)
        if not callable(value):
            return value

        def checked(*args, **kwargs):
            try:
                asyncio.get_running_loop()
                self._wrong.append(name)
            except RuntimeError:  # no loop on this thread: a worker thread
                self._calls.append(name)
            return value(*args, **kwargs)

        return checked


async def test_a_research_run_never_runs_sqlite_on_the_event_loop(store, web, tmp_path):
    """A whole run (library and web, read, regenerate) through the assistant and the recorder,
    with every store area refusing to be called from the event loop's thread."""
    from sleuth.agent.models.catalog import ModelInfo
    from sleuth.agent.research.assistant import Assistant
    from sleuth.agent.research.events import AnswerDone, RunFinished
    from sleuth.agent.tools.library import index_paths
    from sleuth.agent.tools.search import make_search
    from sleuth.store.settings import load_settings
    from tests.fakes import ScriptedLLM

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lyon.md").write_text("# Lyon\n\nLyon was founded by Lucius Munatius Plancus.")
    index_paths(store, [notes])
    calls, wrong = [], []
    for area in ("runs", "feedback", "library", "registry", "training"):
        setattr(store, area, OffTheLoopOnly(getattr(store, area), calls, wrong))
    settings = load_settings(
        None,
        env={},
        flags={
            "search.backend": "searxng",
            "search.searxng_url": web.base,
            "network.allow_private_hosts": True,
            "research.max_rounds": 2,
        },
    )
    plan = {
        "subquestions": [
            {"question": "Who founded Lyon?", "tool": "web_search", "query": "Lyon founder"}
        ]
    }
    reflection = {"enough": True, "new_queries": [], "follow_links": []}
    llm = ScriptedLLM([plan, reflection, "Lucius Munatius Plancus", "Plancus"])
    agent = Assistant(
        store, llm, ModelInfo("scripted", "test"), settings, search=make_search(settings)
    )
    events = [event async for event in agent.ask("Who founded Lyon?", seed=1)]
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "done"
    again = [event async for event in agent.regenerate(finished.run_id, seed=2)]
    await agent.aclose()
    assert any(isinstance(e, AnswerDone) for e in again)
    assert not wrong, f"called on the event loop: {sorted(set(wrong))}"
    for needed in (
        "search_chunks",
        "cached_search",
        "cache_search",
        "save_source",
        "add_step",
        "add_answer",
        "documents" if False else "evidence",
    ):
        assert needed in calls, needed  # the run did reach the store, off the loop


def test_no_benchmark_item_is_named_in_the_product_or_its_tests():
    """Rules written against named benchmark items are how a method gets tuned to a handful
    of questions: examples in code, docs and tests are made up, of the same shape. Checked
    against the benchmark's supporting titles and gold answers of two words or more."""
    import json

    data = [ROOT / "bench" / "data" / "hotpotqa-dev-25.json"]
    # The sets figures are reported on, where a development checkout has them (a clean clone
    # has dev-25 alone); the train pool is for learning from, not for reporting.
    shared = ROOT.parent / "shared" / "data"
    data += [p for p in sorted(shared.glob("*.json")) if "train-797" not in p.name]
    names = set()
    for path in data:
        for item in json.loads(path.read_text(encoding="utf-8")):
            names |= {title for title, _ in item.get("supporting_facts") or []}
            names.add(item["answer"])
    names = {n for n in names if len(n.split()) >= 2 and n[:1].isupper()}
    for path in sources(*PACKAGES, "tests"):
        if path.name == "test_layout.py":
            continue
        text = path.read_text(encoding="utf-8")
        found = sorted(name for name in names if name in text)
        assert not found, f"{path.relative_to(ROOT)} names benchmark items: {found[:5]}"


def _comments_and_docstrings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring in a Python file."""
    import io
    import tokenize

    text = path.read_text(encoding="utf-8")
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(text).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((getattr(node, "lineno", 1), doc))
    return found


# A commit id (7 to 12 hex digits, letters and digits both), or a benchmark figure reported
# in place ("EM 0.27", "F1 0.41", "measured:").
_NOTEBOOK = re.compile(
    r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,12}\b|\b(?:EM|F1) [01]\.\d|measured:",
)


def test_product_comments_explain_and_do_not_report():
    """Comments and docstrings in the product say why; a measurement that decided something
    is pointed to (bench/README.md), never tabled in the code with the commit it ran on."""
    for path in sources("agent", "store", "train", "tui"):
        for line, text in _comments_and_docstrings(path):
            hit = _NOTEBOOK.search(text)
            assert not hit, f"{path.relative_to(ROOT)}:{line} reports {hit.group()!r}"


def test_every_package_is_in_the_wheel():
    """A non-editable install (pip install .) carries exactly the packages pyproject lists: a
    folder of code left out of that list imports in the checkout and fails once installed."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = {f"sleuth.{top}": top for top in ("agent", "store", "train", "tui", "assets")}
    assert {name: setuptools["package-dir"][name] for name in folders} == folders
    found = {
        ".".join(["sleuth", *init.parent.relative_to(ROOT).parts])
        for top in folders.values()
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "packages missing from pyproject's list"
    assert listed - found == set(), "listed packages that do not exist"
