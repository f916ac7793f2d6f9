"""Sleuth's llama.cpp backend vs calling llama-cpp-python directly, in one process.

Both paths drive the same loaded model (so threads, weights and build are identical): the
direct path calls `Llama.create_completion` on the chat-formatted prompt tokens, Sleuth's path
calls `LlamaCppLLM.chat` with the messages. Greedy decoding with the same prompt gives both the
same tokens. The KV cache is cleared before each timed run so both pay the same prefill.
Then prefix-cache reuse: a second call that shares a long evidence prefix with the first.

    .venv/bin/python bench/llm_overhead.py [--runs 10] [--tokens 128]

Target: throughput ratio >= 0.97.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from sleuth.agent.models.catalog import smollm2_model_path
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.agent.models.llm import Sampling

QUESTION = "Explain in detail how a river delta forms, step by step, for a curious student."


def direct(llm: LlamaCppLLM, tokens: list[int], max_tokens: int) -> tuple[int, float]:
    llama = llm.llama
    llama.reset()
    started = time.perf_counter()
    produced = 0
    for chunk in llama.create_completion(
        prompt=tokens, max_tokens=max_tokens, temperature=0.0, stream=True
    ):
        if chunk["choices"][0]["text"]:
            produced += 1
    return produced, time.perf_counter() - started


def sleuth(llm: LlamaCppLLM, messages, max_tokens: int) -> tuple[int, float]:
    llm.llama.reset()
    pieces: list[str] = []
    started = time.perf_counter()
    llm.chat(messages, Sampling(temperature=0.0, max_tokens=max_tokens), on_token=pieces.append)
    return len(pieces), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()

    llm = LlamaCppLLM(smollm2_model_path(), n_ctx=4096)
    messages = [{"role": "user", "content": QUESTION}]
    tokens = llm.tokenize(llm.render(messages))
    direct(llm, tokens, 8)  # warm-up
    sleuth(llm, messages, 8)
    direct_rates, sleuth_rates = [], []
    for run in range(args.runs):
        # Interleaved, alternating which goes first, so drift on the machine hits both alike.
        for name in ("direct", "sleuth") if run % 2 == 0 else ("sleuth", "direct"):
            if name == "direct":
                n, seconds = direct(llm, tokens, args.tokens)
                direct_rates.append(n / seconds)
            else:
                n, seconds = sleuth(llm, messages, args.tokens)
                sleuth_rates.append(n / seconds)
    d, s = statistics.median(direct_rates), statistics.median(sleuth_rates)
    paired = statistics.median(b / a for a, b in zip(direct_rates, sleuth_rates, strict=True))

    evidence = "\n".join(
        f"[{i}] Passage {i}: deltas form where a river meets slower water and drops sediment, "
        f"layer {i} of the record."
        for i in range(1, 41)
    )
    system = {"role": "system", "content": "Answer from the numbered evidence.\n" + evidence}
    llm.llama.reset()
    first = llm.chat(
        [system, {"role": "user", "content": "What is passage 3 about?"}], Sampling(max_tokens=1)
    )
    second = llm.chat(
        [system, {"role": "user", "content": "What is passage 30 about?"}], Sampling(max_tokens=1)
    )

    print(f"machine: {platform.processor() or platform.machine()}, model {llm.model_path.name}")
    print(f"runs: {args.runs} x {args.tokens} tokens, greedy, prompt {len(tokens)} tokens")
    print(
        f"direct llama-cpp-python : {d:7.1f} tok/s (median; {min(direct_rates):.1f}-"
        f"{max(direct_rates):.1f})"
    )
    print(
        f"sleuth LlamaCppLLM.chat : {s:7.1f} tok/s (median; {min(sleuth_rates):.1f}-"
        f"{max(sleuth_rates):.1f})"
    )
    print(f"ratio sleuth/direct     : {paired:7.3f}  (median of paired runs; target >= 0.97)")
    print(
        f"prefix cache            : 2nd call reused {second.cached_tokens} of "
        f"{second.prompt_tokens} prompt tokens; prefill {first.seconds * 1000:.0f} ms -> "
        f"{second.seconds * 1000:.0f} ms"
    )
    llm.close()


if __name__ == "__main__":
    main()
