"""Everything retrieval reads: sources (fetched pages and indexed files) with their chunks and
the chunks' BM25 index (FTS5), the user's indexed files, and the web-search cache."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from .database import Database
from .rows import Chunk, ChunkHit, Document, LibraryRoot, Source

MAX_QUERY_WORDS = 32  # FTS5 ORs them; beyond this a query is a paragraph, not a question
CHUNK_BATCH = 500  # chunks per write transaction: ~0.1 s of the write lock, indexes included
BATCH_PAUSE_S = 0.02  # between batches, so another process waiting to write gets its turn


class Library:
    def __init__(self, db: Database):
        self.db = db

    # -- sources and chunks ------------------------------------------------------------------

    def save_source(
        self,
        *,
        kind: str,
        uri: str,
        text: str,
        content_hash: str,
        chunks: list[tuple[str, int, int]],
        title: str | None = None,
        published: str | None = None,
        content_type: str | None = None,
        links: list[str] | None = None,
        address: str | None = None,
    ) -> int:
        """Store a fetched page or read file with its chunks (text, start, end), replacing an
        earlier version of the same URI; returns the source id (stable across versions)."""
        values = {
            "kind": kind,
            "uri": uri,
            "title": title,
            "published": published,
            "content_type": content_type,
            "text": text,
            "content_hash": content_hash,
            "fetched_at": self.db.clock(),
            "links": links or [],
            "address": address,
        }
        with self.db.write():
            row = self.db.execute("SELECT id FROM sources WHERE uri = ?", [uri]).fetchone()
            if row is None:
                source_id = self.db.insert("sources", values)
            else:
                source_id = row[0]
                self.db.utils["sources"].update(source_id, values)
        # Chunks go in (and old ones out) a batch per transaction: a 50 MB file is tens of
        # thousands of chunks, and one transaction for all of them would hold the write lock
        # longer than another Sleuth waits for it. Readers see the new text as it lands.
        self._delete_chunks(source_id)
        rows = [
            {"source_id": source_id, "position": p, "text": chunk, "start": start, "end": end}
            for p, (chunk, start, end) in enumerate(chunks)
        ]
        for first in range(0, len(rows), CHUNK_BATCH):
            if first:
                time.sleep(BATCH_PAUSE_S)  # let a waiting writer in between batches
            with self.db.write():
                self.db.utils["chunks"].insert_all(rows[first : first + CHUNK_BATCH])
        return source_id

    def _delete_chunks(self, source_id: int) -> None:
        while True:
            with self.db.write():
                deleted = self.db.execute(
                    "DELETE FROM chunks WHERE id IN "
                    "(SELECT id FROM chunks WHERE source_id = ? LIMIT ?)",
                    [source_id, CHUNK_BATCH],
                ).rowcount
            if deleted < CHUNK_BATCH:
                return
            time.sleep(BATCH_PAUSE_S)

    def source(self, source_id: int) -> Source:
        """A source (with its full text)."""
        return self.db.get(Source, "sources", source_id, "source")

    def source_by_uri(self, uri: str) -> Source | None:
        """The stored version of a URL or file path, if any."""
        return self.db.first(Source, "SELECT * FROM sources WHERE uri = ?", [uri])

    def fresh_source(self, uri: str, max_age_s: float) -> Source | None:
        """The stored version of `uri` if it was fetched less than `max_age_s` ago."""
        row = self.source_by_uri(uri)
        if row is None or _age_s(row.fetched_at) > max_age_s:
            return None
        return row

    def chunks(self, source_id: int) -> list[Chunk]:
        """A source's chunks in reading order."""
        return self.db.query(
            Chunk, "SELECT * FROM chunks WHERE source_id = ? ORDER BY position", [source_id]
        )

    def chunk_count(self, source_id: int) -> int:
        return self.db.scalar("SELECT COUNT(*) FROM chunks WHERE source_id = ?", [source_id])

    def delete_source(self, source_id: int) -> None:
        """Forget a source and its chunks (evidence keeps its own copy of the text)."""
        self._delete_chunks(source_id)
        with self.db.write():
            self.db.execute("DELETE FROM sources WHERE id = ?", [source_id])

    def search_chunks(
        self,
        words: Sequence[str],
        *,
        source_ids: Sequence[int] | None = None,
        kind: str | None = None,
        limit: int = 20,
    ) -> list[ChunkHit]:
        """Chunks ranked by BM25 against any of `words` (best first), optionally only within
        some sources or of one kind ("web", "file"). Which words are worth searching for is
        the caller's business (agent/text.py `search_terms`)."""
        if isinstance(words, str):
            raise TypeError("search_chunks takes the words to search for, not a string")
        words = list(dict.fromkeys(w for w in words if w))[:MAX_QUERY_WORDS]
        if not words or (source_ids is not None and not source_ids):
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        where, params = ["chunks_fts MATCH ?"], [match]
        if source_ids is not None:
            where.append("chunks.source_id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(source_ids)))
        if kind is not None:
            where.append("sources.kind = ?")
            params.append(kind)
        params.append(limit)
        return self.db.query(
            ChunkHit,
            "SELECT chunks.id, chunks.source_id, chunks.position, chunks.text, sources.title, "
            "sources.uri, sources.kind, -bm25(chunks_fts) AS score FROM chunks_fts "
            "JOIN chunks ON chunks.id = chunks_fts.rowid "
            "JOIN sources ON sources.id = chunks.source_id "
            f"WHERE {' AND '.join(where)} ORDER BY bm25(chunks_fts) LIMIT ?",
            params,
        )

    # -- the web-search cache ----------------------------------------------------------------

    def cached_search(self, backend: str, query: str, max_age_s: float) -> list | None:
        """Web-search results stored less than `max_age_s` ago, or None."""
        with self.db.read():
            row = self.db.execute(
                "SELECT results, created_at FROM search_cache WHERE backend = ? AND query = ?",
                [backend, query],
            ).fetchone()
        if row is None or _age_s(row[1]) > max_age_s:
            return None
        return json.loads(row[0])

    def cache_search(self, backend: str, query: str, results: list) -> None:
        """Remember web-search results so a repeat run does not search again."""
        with self.db.write():
            self.db.utils["search_cache"].upsert(
                {
                    "backend": backend,
                    "query": query,
                    "results": results,
                    "created_at": self.db.clock(),
                },
                pk=("backend", "query"),
            )

    # -- the user's indexed files ------------------------------------------------------------

    def save_document(
        self,
        *,
        path: str,
        root: str,
        size: int,
        mtime: float,
        sha256: str,
        status: str,
        source_id: int | None = None,
        error: str | None = None,
    ) -> int:
        """Record an indexed (or failed) user file; returns the document id."""
        values = {
            "path": path,
            "root": root,
            "source_id": source_id,
            "size": size,
            "mtime": mtime,
            "sha256": sha256,
            "status": status,
            "error": error,
            "indexed_at": self.db.clock(),
        }
        with self.db.write():
            row = self.db.execute("SELECT id FROM documents WHERE path = ?", [path]).fetchone()
            if row is None:
                return self.db.insert("documents", values)
            self.db.utils["documents"].update(row[0], values)
            return row[0]

    def document(self, path: str) -> Document | None:
        """The index record of a file path, if any."""
        return self.db.first(Document, "SELECT * FROM documents WHERE path = ?", [path])

    def documents(self, root: str | None = None) -> list[Document]:
        """Indexed files (optionally under one indexed folder), by path."""
        if root is None:
            return self.db.query(Document, "SELECT * FROM documents ORDER BY path")
        return self.db.query(
            Document, "SELECT * FROM documents WHERE root = ? ORDER BY path", [root]
        )

    def has_documents(self) -> bool:
        """Whether anything is indexed (what decides if the library can be searched)."""
        return self.db.scalar("SELECT EXISTS (SELECT 1 FROM documents)") == 1

    def summary(self) -> list[LibraryRoot]:
        """Per indexed folder: files, indexed and failed counts, bytes and chunks."""
        return self.db.query(
            LibraryRoot,
            "SELECT documents.root, COUNT(*) AS files, "
            "SUM(documents.status = 'indexed') AS indexed, "
            "SUM(documents.status = 'failed') AS failed, "
            "COALESCE(SUM(documents.size), 0) AS bytes, "
            "(SELECT COUNT(*) FROM chunks JOIN documents AS d ON d.source_id = chunks.source_id "
            " WHERE d.root = documents.root) AS chunks, MAX(documents.indexed_at) AS indexed_at "
            "FROM documents GROUP BY documents.root ORDER BY documents.root",
        )

    def remove_root(self, root: str) -> int:
        """Forget every file indexed under one folder (the files themselves are untouched);
        returns how many were forgotten."""
        with self.db.read():
            source_ids = self.db.execute(
                "SELECT source_id FROM documents WHERE root = ? AND source_id IS NOT NULL", [root]
            ).fetchall()
        for (source_id,) in source_ids:
            self._delete_chunks(source_id)
        with self.db.write():
            sources = [
                row[0]
                for row in self.db.execute(
                    "SELECT source_id FROM documents WHERE root = ? AND source_id IS NOT NULL",
                    [root],
                ).fetchall()
            ]
            count = self.db.execute("DELETE FROM documents WHERE root = ?", [root]).rowcount
            self.db.execute(
                "DELETE FROM sources WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(sources)],
            )
        return count

    def delete_document(self, path: str) -> None:
        """Forget an indexed file and its text."""
        document = self.document(path)
        if document is not None and document.source_id is not None:
            self._delete_chunks(document.source_id)
        with self.db.write():
            row = self.db.execute(
                "SELECT source_id FROM documents WHERE path = ?", [path]
            ).fetchone()
            self.db.execute("DELETE FROM documents WHERE path = ?", [path])
            if row is not None and row[0] is not None:
                self.db.execute("DELETE FROM sources WHERE id = ?", [row[0]])


def _age_s(timestamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds()
