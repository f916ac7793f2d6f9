"""JSON-constrained decoding (the planner's and reflection's calls): Sleuth's lazy grammar
check against llama-cpp-python's own, in one process, on one loaded model.

llama-cpp-python runs the grammar over the whole vocabulary before every sampled token;
Sleuth checks the sampled token alone and runs the whole vocabulary only when that token
breaks the grammar (agent/models/llama.py, `_LazyGrammarSampler`). Both sides run the real planner
prompt and plan schema for the first N dev-25 questions, alternating which goes first, each
call from a cold prompt (as the planner's is: both pay the same prefill), so what differs is
the sampling. Greedy and the planner's own temperature (0.2) are both timed; greedy must
write the same text both ways.

    .venv/bin/python bench/grammar_decoding.py [--model smollm2|qwen2.5-0.5b|gemma3-270m]
        [--questions 8] [--out bench/results/NAME.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import hotpot

from sleuth.agent.models.catalog import resolve_model_path
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.agent.models.llm import Sampling
from sleuth.agent.research.planner import plan_messages, plan_sampling, plan_schema
from sleuth.store import app_dirs

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ["search_library"]
SUBQUESTIONS = 3


def timed(llm: LlamaCppLLM, messages, sampling: Sampling, lazy: bool) -> dict:
    llm.llama.lazy_grammar = lazy
    # A cold prompt, as the planner's call is: a prefix reused from the call before would
    # recompute its last token alone, and the float noise of that can flip a near tie.
    llm.llama.reset()
    completion = llm.chat(messages, sampling, schema=plan_schema(TOOLS, SUBQUESTIONS))
    try:
        json.loads(completion.text)
        valid = True
    except ValueError:
        valid = False
    return {
        "text": completion.text,
        "tokens": completion.completion_tokens,
        "seconds": completion.seconds,
        "valid": valid,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--out", help="write the results here as JSON (with the commit)")
    args = parser.parse_args()

    llm = LlamaCppLLM(resolve_model_path(args.model, app_dirs()), n_ctx=4096)
    questions = [q.question for q in hotpot.load(hotpot.DEV25)[: args.questions]]
    report: dict = {
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "model": llm.model_path.name,
        "vocabulary": llm.llama.n_vocab(),
        "machine": platform.processor() or platform.machine(),
        "command": " ".join(["python", "bench/grammar_decoding.py", *sys.argv[1:]]),
        "sampling": {},
    }
    print(f"model {llm.model_path.name}, vocabulary {llm.llama.n_vocab()}, {len(questions)} plans")
    for name, temperature in (("greedy", 0.0), ("planner (0.2)", 0.2)):
        rows = {"eager": [], "lazy": []}
        for number, question in enumerate(questions):
            messages = plan_messages(question, TOOLS, SUBQUESTIONS)
            sampling = replace(
                plan_sampling(SUBQUESTIONS, seed=number + 1), temperature=temperature
            )
            for lazy in (False, True) if number % 2 == 0 else (True, False):
                rows["lazy" if lazy else "eager"].append(timed(llm, messages, sampling, lazy))
        rate = {
            side: statistics.median(r["tokens"] / r["seconds"] for r in runs if r["tokens"])
            for side, runs in rows.items()
        }
        pairs = list(zip(rows["eager"], rows["lazy"], strict=True))
        paired = statistics.median(
            (lz["tokens"] / lz["seconds"]) / (ea["tokens"] / ea["seconds"])
            for ea, lz in pairs
            if ea["tokens"] and lz["tokens"]
        )
        same = sum(ea["text"] == lz["text"] for ea, lz in pairs)
        seconds = {side: statistics.median(r["seconds"] for r in rs) for side, rs in rows.items()}
        valid = {side: sum(r["valid"] for r in runs) for side, runs in rows.items()}
        print(
            f"{name:<14} llama-cpp-python {seconds['eager']:.2f} s a plan ({rate['eager']:.1f} "
            f"tok/s, prefill included)  lazy {seconds['lazy']:.2f} s ({rate['lazy']:.1f} tok/s)"
            f"  ratio {paired:.2f}x (median of paired runs)  same text {same}/{len(questions)}  "
            f"valid JSON {valid['eager']}/{valid['lazy']}"
        )
        report["sampling"][name] = {
            "tok_per_s": rate,
            "seconds_per_plan": seconds,
            "ratio_lazy_over_eager": round(paired, 3),
            "same_text": same,
            "valid_json": valid,
            "n": len(questions),
        }
    llm.close()
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
