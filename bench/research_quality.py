"""Research quality on HotpotQA questions, asked the way a user asks: every question is one
`sleuth ask --json` process (a fresh model and prompt state each), over a local library or a
local web made of the questions' paragraphs.

  library  each paragraph a Markdown file in one indexed library; `--no-web`
  web      each paragraph an HTML page with site boilerplate and links, behind a
           SearXNG-compatible search, served from 127.0.0.1 (bench/localweb.py); no library

Each question is asked in each of --methods:
  loop        the full loop: the model plans, searches, reflects, searches again, and reads
              the short answer off the evidence (research.answer = read)
  one-shot    research.planner = none: the question alone is searched once, then the same
  loop-write  the full loop with research.answer = write: the model writes the whole answer,
              as Sleuth did before the reader (its seconds are the latency baseline)
  loop-server the full loop with the same model behind llama-cpp-python's OpenAI-compatible
              server on 127.0.0.1 (model.backend = openai), started once for the bench with
              the in-process model's context and threads: the reader over a server

Scores (per method, overall and per question type, with counts):
  EM / F1         HotpotQA's answer metrics on the short answer: the one the model read off
                  the evidence (research.answer = read), or a written answer's first sentence
                  (= write); a yes-or-no question by its yes/no word alone
  own             answers whose short answer is the model's own (not quoted evidence)
  contains        the gold answer in the model's own answer, and apart from it in quotes
  evidence gold   the gold answer in the passages the writer was given (non-yes/no questions)
  reader gap      gold in those passages but not in the model's own answer
  recall          supporting paragraphs among the passages the writer was given
  ungrounded      own short answers whose content words are missing from the passage cited
  validity        citations that point at real evidence, of all written
  degenerate      answers shown that fail the answer checks (must be 0)
  p50 seconds     median seconds per question (and mean), LLM calls per question

    .venv/bin/python bench/research_quality.py [--data dev150|dev25|FILE] [--questions N]
        [--mode library|web|library,web] [--methods loop,one-shot] [--model NAME|PATH]
        [--only choice|polar] [--env KEY=VALUE]... [--out bench/results/NAME.json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hotpot
from localweb import LocalWeb

from sleuth.agent.research.kinds import asked_kind, of_kind
from sleuth.agent.research.passages import alternatives
from sleuth.agent.text import content_words, is_polar
from sleuth.store import Store

ROOT = Path(__file__).resolve().parents[1]
SLEUTH = str(Path(sys.executable).parent / "sleuth")
DATA = hotpot.SETS
METHODS = {
    "loop": {},
    "one-shot": {"SLEUTH_RESEARCH_PLANNER": "none"},
    # The loop before the reader: the model writes the whole answer (the latency baseline).
    "loop-write": {"SLEUTH_RESEARCH_ANSWER": "write"},
    # The same model over HTTP; the endpoint is filled in when the server is up (model_server).
    "loop-server": {"SLEUTH_MODEL_BACKEND": "openai"},
}


@contextlib.contextmanager
def model_server(model: str, log: Path):
    """llama-cpp-python's server on a free 127.0.0.1 port, serving `model` as Sleuth would
    load it in process (its context window and one thread per core); yields its /v1 URL."""
    import socket

    import httpx

    from sleuth.agent.models.catalog import resolve_model_path
    from sleuth.agent.models.files import training_context
    from sleuth.store import app_dirs

    path = resolve_model_path(model, app_dirs())
    n_ctx = min(8192, training_context(path) or 8192)  # model.n_ctx's default, capped the same
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    threads = str(os.cpu_count() or 1)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                str(n_ctx),
                "--n_threads",
                threads,
                "--n_threads_batch",
                threads,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            for _ in range(600):
                if server.poll() is not None:
                    raise SystemExit(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/models", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def ask(question: str, seed: int, env: dict[str, str], model: str, web: bool) -> dict:
    args = [SLEUTH, "ask", "--json", "--seed", str(seed), question]
    if not web:
        args[2:2] = ["--no-web"]
    if model:
        args[2:2] = ["--model", model]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"sleuth ask failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def evidence_texts(home: Path, run_id: int | None) -> list[str]:
    """The passages the writer was given in run `run_id`, title and text, in order."""
    if run_id is None:
        return []
    store = Store.open(home / "data" / "sleuth.db")
    try:
        return [f"{e.title or ''}\n{e.text}" for e in store.runs.evidence(run_id)]
    finally:
        store.close()


def yes_no(text: str) -> str:
    """The yes or no a short answer opens with ("" when it opens with neither)."""
    first = (re.findall(r"[a-z]+", text.lower()) or [""])[0]
    return first if first in ("yes", "no") else ""


def short_of(result: dict) -> tuple[str, bool]:
    """(the short answer, whether it is the model's own): the one it read off the evidence,
    or a written answer's first sentence; quoted evidence has none."""
    kind = (result.get("verification") or {}).get("kind")
    if kind == "reader" and result.get("short_answer"):
        return result["short_answer"], True
    if kind == "model" and result.get("answer"):
        return hotpot.answer_span(result["answer"]), True
    return "", False


def is_ungrounded(read: bool, short: str, cited_text: str, question: str, gold: str) -> bool:
    """A short answer the reader gave whose content words are not all in the passage it
    cites. Yes or no to a yes-or-no question (by its words, or by its gold answer) is
    grounded by the question itself, as Sleuth's own check has it."""
    if not read or not short:
        return False
    if yes_no(short) and (is_polar(question) or gold.strip().lower() in ("yes", "no")):
        return False
    return not content_words(short) <= content_words(cited_text)


def score(question: hotpot.Question, result: dict, title_of: dict, passages: list[str]) -> dict:
    gold = question.answer
    polar = gold.strip().lower() in ("yes", "no")
    answer = result.get("answer") or ""
    verification = result.get("verification") or {}
    short, own = short_of(result)
    if polar:
        said = yes_no(short)
        em = f1 = float(said == gold.strip().lower())
    else:
        said = ""
        em = max(float(hotpot.exact_match(short, g)) for g in question.answers) if short else 0.0
        f1 = max(hotpot.f1(short, g) for g in question.answers) if short else 0.0
    own_text = short if verification.get("kind") == "reader" else (answer if own else "")
    quotes = "\n".join(line for line in answer.splitlines() if line.startswith(">"))
    if verification.get("kind") == "extractive":
        quotes = answer
    citations = result.get("citations") or []
    cited = {n for c in citations[:1] for n in c["numbers"]}
    cited_text = " ".join(passages[n - 1] for n in cited if 0 < n <= len(passages))
    ungrounded = is_ungrounded(
        verification.get("kind") == "reader", short, cited_text, question.question, gold
    )
    sources = [title_of.get(s["uri"], s["title"]) for s in result.get("sources") or []]
    gold_titles = set(question.supporting_titles)
    cited_all = {n for c in citations for n in c["numbers"]}
    cited_titles = {sources[n - 1] for n in cited_all if 0 < n <= len(sources)}
    evidence_gold = (not polar) and any(hotpot.answer_contains(p, gold) for p in passages)
    contains_own = (not polar) and own and hotpot.answer_contains(own_text, gold)
    timings = result.get("timings") or {}
    kind = asked_kind(question.question)
    return {
        "type": question.type,
        "asked_kind": kind,
        "of_kind": None if polar or kind is None or not short else of_kind(short, kind),
        "polar": polar,
        "asked_polar": is_polar(question.question),
        "status": result["status"],
        "em": em,
        "f1": f1,
        "own": own,
        "short_answer": short,
        "yes_no": said if polar else None,
        "contains_own": float(contains_own),
        "contains_quotes": float((not polar) and hotpot.answer_contains(quotes, gold)),
        "evidence_gold": float(evidence_gold),
        "reader_gap": float(evidence_gold and not contains_own),
        "ungrounded": ungrounded,
        "recall": len(gold_titles & set(sources)) / len(gold_titles),
        "cited_recall": len(gold_titles & cited_titles) / len(gold_titles),
        "citations": verification.get("citations", 0),
        "dangling": verification.get("dangling_removed", 0),
        "degenerate": bool(answer) and bool(verification.get("problems")),
        "kind": verification.get("kind"),
        "rejected_for": [p for r in verification.get("rejected") or [] for p in r["problems"]],
        "seconds": timings.get("seconds", 0.0),
        "llm_calls": timings.get("llm_calls", 0),
        "answer": answer,
        "gold": gold,
    }


def summary(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    mean = lambda key: round(statistics.mean(float(r[key]) for r in rows), 3)  # noqa: E731
    count = lambda key: int(sum(bool(r[key]) for r in rows))  # noqa: E731
    written = sum(r["citations"] + r["dangling"] for r in rows)
    spans = [r for r in rows if not r["polar"]]
    polar = [r for r in rows if r["polar"]]
    done = [r for r in rows if r["status"] == "done"]
    return {
        "n": len(rows),
        "em": mean("em"),
        "f1": mean("f1"),
        "own": count("own"),
        "own_share": mean("own"),
        "short_answer_in_done": [sum(bool(r["short_answer"]) for r in done), len(done)],
        "contains_own": [count("contains_own"), len(spans)],
        "contains_quotes": [count("contains_quotes"), len(spans)],
        "evidence_gold": [count("evidence_gold"), len(spans)],
        "reader_gap": [count("reader_gap"), count("evidence_gold")],
        "polar_answered_yes_no": [sum(r["yes_no"] in ("yes", "no") for r in polar), len(polar)],
        "of_kind_asked": [
            sum(bool(r.get("of_kind")) for r in rows if r.get("of_kind") is not None),
            sum(r.get("of_kind") is not None for r in rows),
        ],
        "ungrounded_short_answers": count("ungrounded"),
        "recall": mean("recall"),
        "cited_recall": mean("cited_recall"),
        "citation_validity": round(sum(r["citations"] for r in rows) / written, 3)
        if written
        else None,
        "citations": [sum(r["citations"] for r in rows), written],
        "degenerate_shown": count("degenerate"),
        "kinds": dict(collections.Counter(r["kind"] or r["status"] for r in rows)),
        "rejected_for": dict(
            collections.Counter(p for r in rows for p in r["rejected_for"]).most_common(8)
        ),
        "no_evidence": sum(r["status"] == "no_evidence" for r in rows),
        "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 2),
        "seconds_mean": mean("seconds"),
        "llm_calls": mean("llm_calls"),
    }


def line(name: str, s: dict) -> str:
    if not s["n"]:
        return f"{name:<22} n=0"
    frac = lambda pair: f"{pair[0]}/{pair[1]}"  # noqa: E731
    validity = s["citation_validity"]
    return (
        f"{name:<22} n={s['n']:<3} EM {s['em']:.3f}  F1 {s['f1']:.3f}  own {s['own']}/{s['n']}  "
        f"contains own {frac(s['contains_own'])} quotes {frac(s['contains_quotes'])}  "
        f"evidence gold {frac(s['evidence_gold'])}  reader gap {frac(s['reader_gap'])}  "
        f"yes/no {frac(s['polar_answered_yes_no'])}  of the kind asked "
        f"{frac(s.get('of_kind_asked', [0, 0]))}  ungrounded {s['ungrounded_short_answers']}"
        f"  recall {s['recall']:.2f}  validity "
        f"{'n/a' if validity is None else f'{validity:.2f}'} ({frac(s['citations'])})  "
        f"degenerate {s['degenerate_shown']}  no-evidence {s['no_evidence']}  "
        f"p50 {s['seconds_p50']:.1f} s (mean {s['seconds_mean']:.1f})  {s['llm_calls']:.1f} calls"
    )


def summaries(rows: list[dict]) -> dict:
    """A method's summary over all its questions and over each question type of the set
    (HotpotQA's bridge and comparison, 2Wiki's compositional, inference, ...), and the rows."""
    out = {"all": summary(rows), "types": sorted({r["type"] for r in rows})}
    for kind in out["types"]:
        out[kind] = summary([r for r in rows if r["type"] == kind])
    out["rows"] = rows
    return out


def head() -> str:
    """The commit these benches run at."""
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()


def rescore(path: Path) -> None:
    """A results file's rows scored again where a rule changed since it ran and the rows hold
    what the rule needs (yes or no to a yes-or-no question is grounded; the kind asked, by
    this version's rule, from the set's questions), its summaries recomputed; the file says
    which commit rescored it."""
    report = json.loads(path.read_text())
    data = report.get("data", "dev150")
    asked = hotpot.load(DATA.get(data, Path(data)))[report.get("start", 0) :]
    for name, result in report.items():
        if not (isinstance(result, dict) and "rows" in result):
            continue
        for question, r in zip(asked, result["rows"], strict=False):
            if r["ungrounded"] and r["asked_polar"] and yes_no(r["short_answer"]):
                r["ungrounded"] = False
            kind = asked_kind(question.question)
            short = r["short_answer"]
            r["asked_kind"] = kind
            r["of_kind"] = None if r["polar"] or kind is None or not short else of_kind(short, kind)
        result.update(summaries(result["rows"]))
        print(line(name, result["all"]))
    report["rescored_at"] = head()
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"rescored {path}")


def prepare(mode: str, questions, tmp: Path, base_env: dict, stack) -> tuple[dict, dict]:
    """The environment of every ask in `mode`, and URL or path -> paragraph title."""
    home = tmp / f"home-{mode}"
    env = {**base_env, "SLEUTH_HOME": str(home)}
    if mode == "library":
        library = tmp / "library"
        paths = hotpot.write_library(questions, library)
        env["SLEUTH_SEARCH_BACKEND"] = "none"
        subprocess.run([SLEUTH, "index", str(library)], env=env, check=True, capture_output=True)
        return env, {str(p.resolve()): t for t, p in paths.items()}
    web = stack.enter_context(LocalWeb(questions))
    env.update(
        {
            "SLEUTH_SEARCH_BACKEND": "searxng",
            "SLEUTH_SEARCH_SEARXNG_URL": web.base,
            "SLEUTH_NETWORK_ALLOWED_HOSTS": web.host_port,
        }
    )
    return env, web.title_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default="dev150", help=f"{', '.join(DATA)}, or a JSON file of that shape"
    )
    parser.add_argument("--questions", type=int, help="the first N questions only")
    parser.add_argument(
        "--start", type=int, default=0, help="skip the set's first N questions (tuned on)"
    )
    parser.add_argument(
        "--only",
        choices=("choice", "polar"),
        help="only the questions offering two alternatives, or only the yes-or-no ones",
    )
    parser.add_argument("--model", default="", help="alias or GGUF path (default: the default)")
    parser.add_argument("--mode", default="library", help="library, web, or library,web")
    parser.add_argument("--methods", default="loop,one-shot")
    parser.add_argument("--out", help="write the results here as JSON (with the commit)")
    parser.add_argument(
        "--rescore",
        metavar="FILE",
        help="score a results file's stored rows again with this version's rules, and exit",
    )
    parser.add_argument(
        "--keep", metavar="DIR", help="keep the Sleuth homes here (their runs and evidence)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra SLEUTH_* settings for every ask (a variant being measured)",
    )
    args = parser.parse_args()
    if args.rescore:
        rescore(Path(args.rescore))
        return
    questions = hotpot.load(DATA.get(args.data, Path(args.data)))[args.start :]
    questions = questions[: args.questions]
    if args.only:  # the comparisons: a choice of two alternatives, or a yes-or-no question
        keep = {"choice": alternatives, "polar": is_polar}[args.only]
        questions = [q for q in questions if keep(q.question)]
    commit = head()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    report: dict = {
        "commit": commit + ("+dirty" if dirty else ""),
        "data": args.data,
        "start": args.start,
        "n_questions": len(questions),
        "model": args.model or "default",
        "env": args.env,
        "command": " ".join(["python", "bench/research_quality.py", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} cores",
    }
    started = time.perf_counter()
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        where = Path(args.keep) if args.keep else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if "loop-server" in args.methods.split(","):
            url = stack.enter_context(model_server(args.model, where / "server.log"))
            METHODS["loop-server"]["SLEUTH_MODEL_ENDPOINT"] = url
        for mode in args.mode.split(","):
            env, title_of = prepare(mode, questions, where, {**os.environ, **extra}, stack)
            for method in args.methods.split(","):
                rows = []
                for number, question in enumerate(questions, start=1):
                    result = ask(
                        question.question,
                        number,
                        {**env, **METHODS[method]},
                        args.model,
                        web=mode == "web",
                    )
                    passages = evidence_texts(Path(env["SLEUTH_HOME"]), result.get("run_id"))
                    rows.append(score(question, result, title_of, passages))
                    r = rows[-1]
                    print(
                        f"{mode:<7} {method:<8} {number:3d}/{len(questions)} {r['status']:<11} "
                        f"EM {r['em']:.0f} F1 {r['f1']:.2f} {r['seconds']:5.1f}s "
                        f"| {r['short_answer'][:40]!r} | gold {r['gold'][:40]!r}",
                        flush=True,
                    )
                name = f"{mode}/{method}"
                report[name] = summaries(rows)
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    print()
    for name, result in report.items():
        if isinstance(result, dict) and "all" in result:
            print(line(name, result["all"]))
            for kind in result.get("types", ("bridge", "comparison")):
                print(line(f"  {kind}", result[kind]))
            if result["all"].get("rejected_for"):
                print(f"  rejected, why: {result['all']['rejected_for']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.out} (commit {report['commit']})")


if __name__ == "__main__":
    main()
