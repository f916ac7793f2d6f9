"""Research quality on HotpotQA dev-25 used as a local library, with the default model.

Each question's ten context paragraphs (all 25 questions together: 249 files) are indexed,
then every question is asked two ways:
  sleuth   - the full loop: plan, library searches, reflection, evidence selection, writer
  one-shot - retrieve-then-answer: BM25 top-k for the question alone, then the same writer
so the planner's value is measured, not assumed. Reported per method, over all questions:
  retrieval recall  supporting paragraphs among the evidence the writer saw
  cited recall      supporting paragraphs among the sources the answer cites
  EM / F1           official HotpotQA answer metrics on the answer text; "contains" = the
                    gold answer appears in it (the model writes sentences, not spans)
  citation validity citations that point at real evidence, of all citations written
  supported         cited sentences whose evidence supports them
  seconds, LLM calls per question

    .venv/bin/python bench/research_quality.py [--questions 25] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import hotpot

from sleuth.agent.assistant import Assistant
from sleuth.agent.events import AnswerDone, EvidenceChosen, RunFinished
from sleuth.agent.library import index_paths
from sleuth.agent.llm import Sampling
from sleuth.agent.models import open_llm
from sleuth.agent.text import search_terms
from sleuth.agent.writer import verify, writer_messages
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings


@dataclass
class Scores:
    retrieval: list[float] = field(default_factory=list)
    cited: list[float] = field(default_factory=list)
    em: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    contains: list[float] = field(default_factory=list)
    citations: int = 0
    dangling: int = 0
    cited_sentences: int = 0
    supported: int = 0
    answers_with_citations: int = 0
    seconds: list[float] = field(default_factory=list)
    llm_calls: list[int] = field(default_factory=list)

    def add(
        self, question, titles_seen, answer_text, citations, verification, sources, seconds, calls
    ):
        gold = set(question.supporting_titles)
        cited_numbers = {n for c in citations for n in c["numbers"]}
        cited_titles = {sources[n - 1] for n in cited_numbers if n <= len(sources)}
        self.retrieval.append(len(gold & titles_seen) / len(gold))
        self.cited.append(len(gold & cited_titles) / len(gold))
        self.em.append(float(hotpot.exact_match(answer_text, question.answer)))
        self.f1.append(hotpot.f1(answer_text, question.answer))
        self.contains.append(float(hotpot.answer_contains(answer_text, question.answer)))
        self.citations += verification["citations"]
        self.dangling += verification["dangling_removed"]
        self.cited_sentences += verification["cited_sentences"]
        self.supported += sum(1 for c in citations if c["supported"])
        self.answers_with_citations += bool(verification["citations"])
        self.seconds.append(seconds)
        self.llm_calls.append(calls)

    def row(self, name: str) -> str:
        n = len(self.em)
        written = self.citations + self.dangling
        validity = (
            f"{self.citations / written:.2f} ({self.citations}/{written})"
            if written
            else "n/a (0 written)"
        )
        support = f"{self.supported}/{self.cited_sentences}" if self.cited_sentences else "0/0"
        return (
            f"{name:<9} n={n}  retrieval recall {statistics.mean(self.retrieval):.2f}  "
            f"cited recall {statistics.mean(self.cited):.2f}  EM {statistics.mean(self.em):.2f}  "
            f"F1 {statistics.mean(self.f1):.2f}  contains {statistics.mean(self.contains):.2f}  "
            f"citation validity {validity}  answers citing {self.answers_with_citations}/{n}  "
            f"supported {support}  {statistics.mean(self.seconds):.1f} s/q  "
            f"{statistics.mean(self.llm_calls):.1f} LLM calls/q"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=25)
    parser.add_argument("--model", default="", help="GGUF path or alias (default: SmolLM2)")
    args = parser.parse_args()
    questions = hotpot.load(hotpot.DEV25)[: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = hotpot.write_library(hotpot.load(hotpot.DEV25), root / "library")
        title_of = {str(p.resolve()): t for t, p in paths.items()}
        store = Store.open(root / "bench.db")
        index_paths(store, [root / "library"])
        settings = load_settings(
            None, env={}, flags={"search.backend": "none", "model.path": args.model}
        )
        llm, info = open_llm(settings, Dirs(root, root, root), store)
        agent = Assistant(store, llm, info, settings)
        research = settings.research
        sleuth, baseline = Scores(), Scores()
        print(f"model {info.name}; {len(questions)} questions; library of {len(paths)} paragraphs")
        for number, question in enumerate(questions, start=1):
            evidence_event = answer = finished = None
            async for event in agent.ask(question.question, seed=number):
                if isinstance(event, EvidenceChosen):
                    evidence_event = event
                elif isinstance(event, AnswerDone):
                    answer = event
                elif isinstance(event, RunFinished):
                    finished = event
            assert evidence_event and answer and finished, finished
            sources = [title_of[s["uri"]] for s in answer.sources]
            sleuth.add(
                question,
                {title_of[i["uri"]] for i in evidence_event.items},
                answer.text,
                answer.citations,
                answer.verification,
                sources,
                finished.seconds,
                finished.llm_calls,
            )

            # One-shot baseline: the question's BM25 top-k under the same evidence budget.
            started = time.perf_counter()
            hits = store.library.search_chunks(
                search_terms(question.question), kind="file", limit=research.evidence_k
            )
            evidence, tokens = [], 0
            for hit in hits:
                item = {"uri": hit.uri, "title": hit.title, "text": hit.text}
                cost = llm.count_tokens(hit.text) + 12
                if tokens + cost <= research.evidence_tokens:
                    evidence.append(item)
                    tokens += cost
            completion = llm.chat(
                writer_messages(question.question, evidence),
                Sampling(
                    temperature=research.temperature, max_tokens=research.answer_tokens, seed=number
                ),
            )
            checked = verify(completion.text, evidence)
            base_sources = [title_of[e["uri"]] for e in evidence]
            baseline.add(
                question,
                set(base_sources),
                checked.text,
                checked.citations,
                checked.verification,
                base_sources,
                time.perf_counter() - started,
                1,
            )
            print(
                f"{number:2d}/{len(questions)} sleuth {finished.seconds:5.1f}s "
                f"recall {sleuth.retrieval[-1]:.1f} | one-shot recall {baseline.retrieval[-1]:.1f} "
                f"| gold {question.answer!r}",
                flush=True,
            )
        await agent.aclose()
        print()
        print(sleuth.row("sleuth"))
        print(baseline.row("one-shot"))


if __name__ == "__main__":
    asyncio.run(main())
