"""The user's library: files indexed into chunks with FTS5 (BM25) in the store.

Incremental: a file whose size and mtime are unchanged is skipped without reading it; one
whose content hash is unchanged is not re-chunked; files gone from an indexed folder are
pruned. Each file is committed on its own, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sleuth.agent.text import chunk_text
from sleuth.store import Store

from .extract import FetchError, decode, html_text, pdf_text

SUPPORTED = {".md", ".markdown", ".txt", ".text", ".rst", ".html", ".htm", ".pdf"}
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox"}
MAX_FILE_BYTES = 50_000_000


class LibraryError(Exception):
    """A path the user asked to index that cannot be (missing, unreadable)."""


@dataclass
class FileResult:
    path: str
    status: str  # indexed, unchanged, failed, removed, skipped
    chunks: int = 0
    error: str | None = None


@dataclass
class IndexReport:
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    skipped: int = 0  # links outside the folder, loops, pipes and devices: never read
    chunks: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    cancelled: bool = False

    def add(self, result: FileResult, size: int = 0) -> None:
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.chunks += result.chunks
        if result.status == "indexed":
            self.bytes += size
        if result.error:
            where = self.skipped_files if result.status == "skipped" else self.failures
            where.append((result.path, result.error))


Progress = Callable[[int, int, FileResult], None]  # done, total, the file just handled


def discover(root: Path) -> tuple[list[Path], list[FileResult]]:
    """Supported files under `root` (or `root` itself), skipping hidden and tool folders, and
    what was skipped and why: links leading outside `root`, symlink loops, and anything that
    is not a regular file (devices, pipes, sockets), which are never opened."""
    if root.is_file():
        candidates = [root] if root.suffix.lower() in SUPPORTED else []
    else:
        candidates = []
        for folder, dirs, files in os.walk(root):  # does not follow links to folders
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            candidates += [
                Path(folder) / name
                for name in sorted(files)
                if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED
            ]
    files, skipped = [], []
    for path in candidates:
        problem = _not_indexable(path, root)
        if problem:
            skipped.append(FileResult(str(path), "skipped", error=problem))
        else:
            files.append(path)
    return files, skipped


def _not_indexable(path: Path, root: Path) -> str | None:
    """Why `path` is not read (None: it is a regular file inside `root`)."""
    try:
        target = path.resolve(strict=True)
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
            return "a symlink loop"
        return f"unreadable ({exc.strerror or exc})"
    if target != root and not target.is_relative_to(root):
        return f"a link to {target}, outside the indexed folder"
    try:
        mode = os.stat(target).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_kind(mode)})"
    return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def resolve_root(raw: Path | str) -> Path:
    """A path the user asked to index, resolved; LibraryError when it cannot be indexed."""
    path = Path(raw).expanduser()
    try:
        root = path.resolve(strict=True)
    except FileNotFoundError:
        raise LibraryError(f"{raw} does not exist.") from None
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
            raise LibraryError(f"{raw} is a symlink loop: nothing was indexed.") from None
        raise LibraryError(f"{raw} cannot be read ({exc.strerror or exc}).") from None
    if root.is_dir():
        return root
    if not root.is_file():
        raise LibraryError(f"{raw} is not a regular file or a folder: nothing was indexed.")
    if root.suffix.lower() not in SUPPORTED:
        raise LibraryError(f"{raw} is not a supported file ({', '.join(sorted(SUPPORTED))}).")
    return root


def index_paths(
    store: Store,
    paths: list[Path],
    *,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> IndexReport:
    """Index (or re-index) files and folders; returns counts of what happened."""
    started = time.perf_counter()
    report = IndexReport()
    plan: list[tuple[Path, Path]] = []  # (root, file)
    for raw in paths:
        root = resolve_root(raw)
        files, skipped = discover(root)
        for result in skipped:
            report.add(result)
        present = {str(f) for f in files}
        for document in store.library.documents(root=str(root)):
            if document.path not in present:
                store.library.delete_document(document.path)
                report.add(FileResult(document.path, "removed"))
        plan.extend((root, f) for f in files)
    total = len(plan)
    for done, (root, path) in enumerate(plan, start=1):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        result, size = index_file(store, root, path)
        report.add(result, size)
        if on_progress is not None:
            on_progress(done, total, result)
    report.seconds = time.perf_counter() - started
    return report


def index_file(store: Store, root: Path, path: Path) -> tuple[FileResult, int]:
    """Index one file if it changed; returns what happened and its size."""
    key = str(path)
    try:
        info = path.stat()
    except OSError as exc:
        return _failed(store, root, path, 0, 0.0, "", f"unreadable ({exc.strerror})"), 0
    existing = store.library.document(key)
    if (
        existing is not None
        and existing.status == "indexed"
        and existing.size == info.st_size
        and existing.mtime == info.st_mtime
    ):
        return FileResult(key, "unchanged"), info.st_size
    if info.st_size > MAX_FILE_BYTES:
        return _failed(store, root, path, info.st_size, info.st_mtime, "", "too large"), 0
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FetchError as exc:
        return _failed(store, root, path, info.st_size, info.st_mtime, "", str(exc)), 0
    except OSError as exc:
        return _failed(
            store, root, path, info.st_size, info.st_mtime, "", f"unreadable ({exc.strerror})"
        ), 0
    digest = hashlib.sha256(data).hexdigest()

    def indexed(source_id: int) -> None:
        store.library.save_document(
            path=key,
            root=str(root),
            size=info.st_size,
            mtime=info.st_mtime,
            sha256=digest,
            status="indexed",
            source_id=source_id,
        )

    if existing is not None and existing.status == "indexed" and existing.sha256 == digest:
        indexed(existing.source_id)  # touched, not changed: just the new mtime
        return FileResult(key, "unchanged"), info.st_size
    try:
        title, text = read_text(path, data)
    except FetchError as exc:
        return _failed(store, root, path, info.st_size, info.st_mtime, digest, str(exc)), 0
    except Exception as exc:  # noqa: BLE001 - one file fails, not the index
        # A parser's own failure on a hostile or broken file (pypdf's limits, a RecursionError
        # or MemoryError in lxml or a codec) fails that file, and indexing goes on.
        why = f"could not be read ({exc.__class__.__name__})"
        return _failed(store, root, path, info.st_size, info.st_mtime, digest, why), 0
    chunks = chunk_text(text)
    source_id = store.library.save_source(
        kind="file",
        uri=key,
        title=title,
        text=text,
        content_hash=digest,
        chunks=[(c.text, c.start, c.end) for c in chunks],
        content_type=path.suffix.lower().lstrip("."),
    )
    indexed(source_id)
    return FileResult(key, "indexed", chunks=len(chunks)), info.st_size


def _failed(store: Store, root: Path, path: Path, size: int, mtime: float, digest: str, error: str):
    previous = store.library.document(str(path))
    if previous is not None and previous.source_id is not None:
        store.library.delete_source(previous.source_id)  # stale text must not be searched
    store.library.save_document(
        path=str(path),
        root=str(root),
        size=size,
        mtime=mtime,
        sha256=digest,
        status="failed",
        error=error,
    )
    return FileResult(str(path), "failed", error=error)


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, at most `limit` of them. Opened without blocking and checked
    on the open descriptor, so a file swapped for a pipe or a device meanwhile is not read."""
    fd = os.open(path.resolve(), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FetchError("not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FetchError("too large")
    return data


def read_text(path: Path, data: bytes) -> tuple[str, str]:
    """Title and text of a supported file. Raises FetchError when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        title, text = pdf_text(data)
    elif suffix in (".html", ".htm"):
        title, text, _, _ = html_text(data, path.as_uri())
    else:
        if b"\x00" in data[:8192]:
            raise FetchError("binary file with a text extension")
        text = decode(data)
        title = _heading(text)
    text = text.strip()
    if not text:
        raise FetchError("no readable text")
    return title or path.stem, text


def _heading(text: str) -> str:
    lines = text.lstrip().splitlines()
    for number, line in enumerate(lines[:20]):
        stripped = line.strip()
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()
        # reStructuredText: a title underlined with = or -
        if number + 1 < len(lines) and stripped and set(lines[number + 1].strip()) <= set("=-~^"):
            if len(lines[number + 1].strip()) >= len(stripped) > 0:
                return stripped
    return ""
