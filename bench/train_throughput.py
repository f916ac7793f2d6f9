"""Trainer throughput and memory: our DPO step vs TRL's DPOTrainer, and GRPO rollout speed.

Both DPO paths train the same LoRA (r=8, attention and MLP projections) on the same model and
the same batch: 2 preference pairs of about --length tokens each (prompt from HotpotQA
evidence), reference = the model with the adapter disabled, AdamW, fp32 on CPU (bf16 on
CUDA). Like with like: each side runs its own whole training step (ours: `steps.dpo.step`
and backward; TRL: `DPOTrainer.training_step`, which prepares the batch, computes the loss
and runs backward), then the same optimizer step; and both are measured with gradient
checkpointing on and with it off. Each measurement runs in its own process so its peak RSS is
its own; the step time is the median of --steps timed steps after a warm-up, and the ratios
are of those medians. Then GRPO rollouts: G answers to one prompt sampled by llama.cpp (with
an adapter loaded) vs transformers `generate`.

    .venv/bin/python bench/train_throughput.py [--model smollm2|gemma3-270m|PATH]
        [--length 1024] [--steps 3] [--device cpu|cuda] [--out bench/results/NAME.json]

Targets: our DPO step >= 1.0x TRL's tokens/s and <= 1.0x its peak memory; peak RSS <= 6 GB
at 2 x 1024 tokens, Gemma 3 270M (262k vocabulary) included.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from queue import Empty

ROOT = Path(__file__).resolve().parents[1]


def conversations(tokenizer, length: int) -> list[dict]:
    """Two prompt/chosen/rejected triples whose prompts fill about `length` tokens."""
    import hotpot

    questions = hotpot.load(hotpot.DEV25)
    rows = []
    for question in questions[:2]:
        evidence, used = [], 0
        for number, (title, sentences) in enumerate(question.context * 4, start=1):
            text = f"[{number}] {title}\n{''.join(sentences)}"
            cost = len(tokenizer(text).input_ids)
            if used + cost > length - 140:
                break
            evidence.append(text)
            used += cost
        prompt = [
            {"role": "system", "content": "Answer from the numbered evidence, citing it as [n]."},
            {
                "role": "user",
                "content": f"Question: {question.question}\n\nEvidence:\n" + "\n\n".join(evidence),
            },
        ]
        chosen = f"The answer is {question.answer} [1]. " * 6
        rejected = "I am not sure what the evidence says about this question at all. " * 5
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return rows


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def timed(backward, optimizer, tokens: int, steps: int, device: str) -> dict:
    """A warm-up step, then `steps` timed steps (`backward()`: forward and backward, then the
    optimizer step): the median step's speed, and the peak memory."""
    import torch

    def step():
        backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return {
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "step_seconds": times,
        "tokens": tokens,
        "peak_rss_gb": peak_rss_gb(),
        "gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
    }


def ours(
    model_path: str, cache: str, length: int, steps: int, device: str, checkpointing: bool, queue
) -> None:
    """The trainer's own DPO step (train/steps/dpo.py) on the model `sleuth train` prepares."""
    from types import SimpleNamespace

    import torch

    from sleuth.agent.models.chat_format import chat_formatter
    from sleuth.train.config import TrainConfig
    from sleuth.train.distributed import World
    from sleuth.train.model_io import load_base
    from sleuth.train.steps import STEPS, Context, trainable

    torch.manual_seed(0)
    base = load_base(
        Path(model_path),
        Path(cache),
        device=device,
        dtype=torch.bfloat16 if device == "cuda" else torch.float32,
    )
    tok = base.tokenizer
    chat = chat_formatter(
        base.chat_template, base.architecture, bos=tok.bos_token or "", eos=tok.eos_token or ""
    )
    config = TrainConfig(
        algo="dpo",
        lora_r=8,
        lora_alpha=16,
        lr=1e-4,
        beta=0.1,
        batch_size=2,
        gradient_checkpointing=checkpointing,
    )
    model = trainable(base.model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    softcap = getattr(model.config, "final_logit_softcapping", None)
    context = Context(model, tok, chat, config, World(), device, softcap)
    pairs = [
        (
            SimpleNamespace(messages=r["prompt"], text=r["chosen"][0]["content"]),
            SimpleNamespace(messages=r["prompt"], text=r["rejected"][0]["content"]),
        )
        for r in conversations(tok, length)
    ]
    tokens = sum(len(context.encode(a.messages, a.text)) for pair in pairs for a in pair)
    model.train()

    def backward():
        STEPS["dpo"](context, pairs)[0].backward()

    queue.put(timed(backward, optimizer, tokens, steps, device))


def trl(
    model_path: str, cache: str, length: int, steps: int, device: str, checkpointing: bool, queue
) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from sleuth.agent.models.files import fingerprint
    from sleuth.train.model_io import LORA_TARGETS

    warnings.filterwarnings("ignore")
    os.environ["WANDB_DISABLED"] = "true"
    import datasets

    datasets.disable_progress_bars()
    torch.manual_seed(0)
    converted = Path(cache) / "hf" / fingerprint(Path(model_path))
    tok = AutoTokenizer.from_pretrained(str(converted))
    if tok.chat_template is None:  # Gemma's base GGUF has none: use the one Sleuth uses
        from sleuth.agent.models.chat_format import bundled_template

        tok.chat_template = bundled_template("gemma.jinja")
    model = AutoModelForCausalLM.from_pretrained(
        str(converted), dtype=torch.bfloat16 if device == "cuda" else torch.float32
    ).to(device)
    rows = conversations(tok, length)
    args = DPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=2,
        report_to="none",
        beta=0.1,
        loss_type=["sigmoid"],
        max_length=length + 200,
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        learning_rate=1e-4,
        gradient_checkpointing=checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
    )
    peft_config = LoraConfig(r=8, lora_alpha=16, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=peft_config,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    tokens = int(batch["attention_mask"].sum())
    model = trainer.model
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    # Set by Trainer's loop for each optimizer step (the micro-batches it accumulates): one.
    trainer.current_gradient_accumulation_steps = 1

    def backward():  # TRL's own step: inputs prepared, loss computed, backward run
        trainer.training_step(model, batch)

    queue.put(timed(backward, optimizer, tokens, steps, device))


def rollouts(model_path: str, cache: str, device: str, queue) -> None:
    """G=4 answers of up to 128 tokens to one prompt: llama.cpp vs transformers generate."""
    from sleuth.agent.models.chat_format import chat_formatter
    from sleuth.train.model_io import attach_lora, factors_from_peft, load_base, write_gguf_adapter
    from sleuth.train.rollouts import LlamaRollouts, TransformersRollouts

    base = load_base(Path(model_path), Path(cache), device=device)
    tok = base.tokenizer
    chat = chat_formatter(
        base.chat_template, base.architecture, bos=tok.bos_token or "", eos=tok.eos_token or ""
    )
    model = attach_lora(base.model, 8, 16)
    adapter = write_gguf_adapter(
        factors_from_peft(model),
        Path(tempfile.mkdtemp()) / "a.gguf",
        architecture=base.architecture,
        n_head=base.n_head,
        n_head_kv=base.n_head_kv,
    )
    messages = conversations(tok, 400)[0]["prompt"]
    result = {}
    for name, sampler in [
        ("llama.cpp", LlamaRollouts(Path(model_path), n_ctx=2048)),
        ("transformers", TransformersRollouts(model, tok, chat)),
    ]:
        sampler.set_adapter(adapter)
        sampler.sample(messages, 1, max_new_tokens=8, temperature=1.0, seed=0)  # warm-up
        started = time.perf_counter()
        samples = sampler.sample(messages, 4, max_new_tokens=128, temperature=1.0, seed=1)
        seconds = time.perf_counter() - started
        produced = sum(len(tok(s.text, add_special_tokens=False).input_ids) for s in samples)
        result[name] = {"tokens": produced, "seconds": seconds, "tokens_per_s": produced / seconds}
        sampler.close()
    queue.put(result)


def isolated(target, *args):
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    while True:  # a side that dies (its traceback is above) must not leave us waiting forever
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not process.is_alive():
                failed = f"{target.__name__} failed (exit code {process.exitcode})"
                raise SystemExit(failed) from None
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", help="write the results here as JSON (with the commit)")
    args = parser.parse_args()
    from sleuth.agent.models.catalog import resolve_model_path
    from sleuth.store import app_dirs

    dirs = app_dirs()
    path = resolve_model_path(args.model, dirs)
    cache = dirs.cache
    print(f"model {path.name}; converting for training if not cached ({cache})…", flush=True)
    isolated(_warm, str(path), str(cache))
    measured = {}
    for checkpointing in (True, False):
        label = "checkpointing on" if checkpointing else "checkpointing off"
        mine = isolated(
            ours, str(path), str(cache), args.length, args.steps, args.device, checkpointing
        )
        theirs = isolated(
            trl, str(path), str(cache), args.length, args.steps, args.device, checkpointing
        )
        measured[label] = {"sleuth": mine, "trl": theirs}
        print(
            f"DPO step, {label}, batch 2 pairs, {mine['tokens']} tokens (TRL's batch: "
            f"{theirs['tokens']}), median of {args.steps} timed steps after a warm-up, "
            f"{args.device}:"
        )
        for name, r in [("sleuth", mine), ("TRL DPOTrainer", theirs)]:
            gpu = f", GPU peak {r['gpu_gb']:.2f} GB" if r["gpu_gb"] is not None else ""
            print(
                f"  {name:<15} {r['tokens_per_s']:8.0f} tok/s ({r['seconds']:.2f} s/step), "
                f"peak RSS {r['peak_rss_gb']:.2f} GB{gpu}"
            )
        speed = mine["tokens_per_s"] / theirs["tokens_per_s"]
        memory = mine["peak_rss_gb"] / theirs["peak_rss_gb"]
        measured[label]["ratios"] = {"speed": speed, "peak_rss": memory}
        print(
            f"  ratios sleuth/TRL: speed {speed:.2f}x (target >= 1.0), peak RSS {memory:.2f}x "
            f"(target <= 1.0); sleuth peak {mine['peak_rss_gb']:.2f} GB (target <= 6 GB)"
        )
    sampled = isolated(rollouts, str(path), str(cache), args.device)
    print("GRPO rollouts, 4 answers x up to 128 tokens, adapter loaded:")
    for name, r in sampled.items():
        print(
            f"  {name:<13} {r['tokens_per_s']:7.1f} tok/s "
            f"({r['tokens']} tokens in {r['seconds']:.1f} s)"
        )
    print(
        "  llama.cpp / transformers: "
        f"{sampled['llama.cpp']['tokens_per_s'] / sampled['transformers']['tokens_per_s']:.1f}x"
    )
    report = {
        "commit": _commit(),
        "command": "python bench/train_throughput.py " + " ".join(sys.argv[1:]),
        "model": path.name,
        "length": args.length,
        "dpo": measured,
        "rollouts": sampled,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out} (commit {report['commit']})")
    else:
        print(json.dumps(report), file=sys.stderr)


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _warm(path: str, cache: str, queue) -> None:
    from sleuth.train.model_io import load_base

    load_base(Path(path), Path(cache))
    queue.put(True)


if __name__ == "__main__":
    main()
