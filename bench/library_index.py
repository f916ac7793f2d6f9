"""Library indexing throughput and query latency at 100k chunks, against bm25s in-process.

A synthetic corpus (Zipf-distributed pseudo-words, ~8 KB Markdown files) is written to a temp
folder and indexed by Sleuth's indexer (read, chunk with overlap, SQLite + FTS5). bm25s then
indexes the very same chunk texts in memory. Both answer the same 200 queries (top 10).

    .venv/bin/python bench/library_index.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sleuth.agent.text import chunk_text, search_terms
from sleuth.agent.tools.library import index_paths
from sleuth.store import Store

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "tu",
    "ve",
    "son",
    "dar",
    "pel",
    "ix",
    "or",
    "qua",
    "ne",
    "bri",
    "sto",
    "fen",
    "gal",
    "hu",
    "jor",
    "wy",
]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def write_corpus(folder: Path, files: int, words_per_file: int, vocab: list[str], rng) -> int:
    weights = [1 / (rank + 1) for rank in range(len(vocab))]  # Zipf, like real text
    total = 0
    for number in range(files):
        tokens = rng.choices(vocab, weights, k=words_per_file)
        sentences = [
            " ".join(tokens[i : i + 14]).capitalize() + "." for i in range(0, len(tokens), 14)
        ]
        paragraphs = ["\n".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)]
        text = f"# Document {number}\n\n" + "\n\n".join(paragraphs) + "\n"
        (folder / f"doc{number:06d}.md").write_text(text)
        total += len(text.encode())
    return total


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    import bm25s

    rng = random.Random(0)
    vocab = vocabulary(30_000, rng)
    words_per_file = 1200  # ~12 KB of Markdown per file
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        write_corpus(folder, 1, words_per_file, vocab, random.Random(1))
        per_file = len(chunk_text((folder / "doc000000.md").read_text()))
        (folder / "doc000000.md").unlink()
        files = max(1, round(args.chunks / per_file))
        size = write_corpus(folder, files, words_per_file, vocab, rng)
        store = Store.open(Path(tmp) / "bench.db")
        started = time.perf_counter()
        report = index_paths(store, [folder])
        ours_s = time.perf_counter() - started
        texts = [row["text"] for row in store.db.query("SELECT text FROM chunks ORDER BY id")]
        ids = [row["id"] for row in store.db.query("SELECT id FROM chunks ORDER BY id")]
        chunk_mb = sum(len(t.encode()) for t in texts) / 1e6

        started = time.perf_counter()
        retriever = bm25s.BM25()
        retriever.index(
            bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False
        )
        bm25s_s = time.perf_counter() - started

        mid = vocab[200:6000]  # words frequent enough to match, rare enough to discriminate
        queries = [" ".join(rng.sample(mid, rng.randint(3, 6))) for _ in range(args.queries)]
        ours_ms, theirs_ms, overlap = [], [], []
        for query in queries:
            t0 = time.perf_counter()
            hits = store.library.search_chunks(search_terms(query), limit=10)
            ours_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            found, _ = retriever.retrieve(
                bm25s.tokenize([query], stopwords="en", show_progress=False),
                k=10,
                show_progress=False,
            )
            theirs_ms.append((time.perf_counter() - t0) * 1000)
            theirs = {ids[i] for i in found[0]}
            overlap.append(len({h.id for h in hits} & theirs) / 10)
        store.close()

    p50, p95 = percentiles(ours_ms)
    b50, b95 = percentiles(theirs_ms)
    print(
        f"corpus: {report.indexed} files, {size / 1e6:.1f} MB of Markdown -> {report.chunks} "
        f"chunks ({chunk_mb:.1f} MB of chunk text, overlap included)"
    )
    print(
        f"index  sleuth (read+chunk+SQLite/FTS5): {ours_s:6.1f} s = {chunk_mb / ours_s:5.2f} MB/s "
        f"of chunk text ({size / 1e6 / ours_s:.2f} MB/s of files), durable on disk"
    )
    print(
        f"index  bm25s (tokenize+index, memory) : {bm25s_s:6.1f} s = "
        f"{chunk_mb / bm25s_s:5.2f} MB/s of chunk text, in memory only"
    )
    print(f"query  sleuth FTS5 BM25 top-10        : p50 {p50:6.2f} ms, p95 {p95:6.2f} ms")
    print(f"query  bm25s top-10                   : p50 {b50:6.2f} ms, p95 {b95:6.2f} ms")
    print(f"ratios sleuth/bm25s: index speed {bm25s_s / ours_s:.2f}x, query p50 {p50 / b50:.2f}x")
    print(
        f"top-10 agreement with bm25s: {statistics.mean(overlap):.2f} over {args.queries} queries "
        "(tokenisers differ: FTS5 porter vs bm25s plain)"
    )


if __name__ == "__main__":
    main()
