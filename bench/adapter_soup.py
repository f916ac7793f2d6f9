"""Average adapters trained on the same feedback with different seeds, and answer with the mean.

The learning curve's runs at 80 questions move a few held-out answers each way, and a second
training seed moved them differently (bench/README, SFT then IPO at seeds 0 and 1). If what
the seed decides is noise and what the feedback teaches is shared, the mean of the seeds'
weight changes keeps the shared part and shrinks the rest: a "model soup" of LoRA adapters.
The mean is exact: each adapter's factors stacked along the rank, B scaled by 1/n, so the
soup's change is the mean of the adapters' changes (LoraFactors.combined_with).

Usage:
    python bench/adapter_soup.py --workdir DIR --adapters A.safetensors B.safetensors ...
        [--dev25] [--out bench/results/adapter_soup.json]

DIR is a learning-curve workdir (bench/learning_curve.py --workdir): its held-out research
(heldout.db) and, with --dev25, its dev-25 research (dev25.db). Each adapter is a trained
adapter's factors (the .safetensors beside its .gguf; for a pipeline, the last stage's, which
holds the stages before it). Base, each adapter and their mean answer the same held-out prompts
greedily, as bench/learning_curve.py evaluates; the report gives each one's difference to base
with its bootstrap 95% interval and the answers it moved, and how many of the answers each
adapter moved the others moved too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from closed_loop import commit, difference, mean
from learning_curve import METRICS, changed, evaluate, joined, moved, reused_sets

from sleuth.train.model_io import LoraFactors, write_gguf_adapter

RESULTS = Path(__file__).resolve().parent / "results"


def soup(paths: list[Path]) -> LoraFactors:
    """The mean of the adapters' weight changes, as one LoRA of their summed rank."""
    out = LoraFactors()
    for path in paths:
        factors = LoraFactors.load(path)
        scaled = LoraFactors(
            {name: (a, b, scale / len(paths)) for name, (a, b, scale) in factors.modules.items()}
        )
        out = out.combined_with(scaled)
    return out


def gguf_shape(base_path: Path) -> dict:
    """The base GGUF's architecture and attention heads: what writing an adapter for it takes."""
    from gguf import GGUFReader

    reader = GGUFReader(str(base_path))

    def value(key: str):
        field = reader.fields[key]
        data = field.parts[field.data[0]]
        return bytes(data).decode() if field.types[0].name == "STRING" else int(data[0])

    arch = value("general.architecture")
    return {
        "architecture": arch,
        "n_head": value(f"{arch}.attention.head_count"),
        "n_head_kv": value(f"{arch}.attention.head_count_kv"),
    }


def scored(base: dict, model: dict) -> dict:
    """A model against base on the same prompts: difference, answers moved each way, which."""
    return {
        "scores": {name: mean(model["parts"][name]) for name in METRICS},
        "diff_vs_base": difference(base["parts"], model["parts"], METRICS),
        "answers_vs_base": changed(base["parts"]["f1"], model["parts"]["f1"]),
        "moved": moved(base, model),
    }


def overlap(rows: list[dict]) -> dict:
    """Of the answers each single adapter moved, how many every other adapter moved too (to
    the same answer): shared moves are what the training does whatever its seed."""
    sets = [{(m["prompt"], m["model"]) for m in row["moved"]} for row in rows]
    shared = set.intersection(*sets) if sets else set()
    return {"moved_by_each": [len(s) for s in sets], "moved_alike_by_all": len(shared)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a learning-curve workdir")
    parser.add_argument("--adapters", nargs="+", required=True, help="adapters' .safetensors")
    parser.add_argument("--dev25", action="store_true", help="also dev-25 (the workdir's)")
    parser.add_argument("--held", type=int, default=50, help="held-out questions")
    parser.add_argument("--out", default=str(RESULTS / "adapter_soup.json"))
    args = parser.parse_args(argv)

    root = Path(args.workdir)
    paths = [Path(p) for p in args.adapters]
    needed = paths + [p.with_suffix(".gguf") for p in paths] + [root / "heldout.db"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        sys.exit(f"adapter_soup: no such file: {', '.join(missing)}")
    if len(paths) < 2:
        sys.exit("adapter_soup: a mean needs two adapters at least")

    if args.dev25 and not (root / "dev25.done").is_file():
        sys.exit(f"adapter_soup: {root} holds no dev-25 research (learning_curve --dev25)")

    started = time.perf_counter()
    sets, base_path = reused_sets(root, args.held, args.dev25)

    mixed = root / "soup" / "soup.gguf"
    write_gguf_adapter(soup(paths), mixed, name="sleuth-soup", **gguf_shape(base_path))
    models = {str(p): p.with_suffix(".gguf") for p in paths} | {"mean": mixed}

    report = {
        "commit": commit(),
        "command": "python bench/adapter_soup.py " + " ".join(argv or sys.argv[1:]),
        "model": base_path.stem,
        "adapters": [str(p) for p in paths],
        "sets": {},
    }
    answered: dict[str, dict[str, dict]] = {}  # set -> "base" or model label -> evaluation
    for name, prompts in sets.items():
        print(f"{name}: {len(prompts)} prompts; base", flush=True)
        answered[name] = {"base": evaluate(base_path, None, prompts)}
        for label, adapter in models.items():
            print(f"{name}: {label}", flush=True)
            answered[name][label] = evaluate(base_path, str(adapter), prompts)
        base, rows = answered[name]["base"], {}
        for label in models:
            rows[label] = scored(base, answered[name][label])
            print(f"  {label}: F1 {rows[label]['diff_vs_base']['f1']}", flush=True)
        report["sets"][name] = {
            "n_questions": len(prompts),
            "base": {m: mean(base["parts"][m]) for m in METRICS},
            "models": rows,
            "overlap": overlap([rows[str(p)] for p in paths]),
        }
    if len(sets) > 1:  # every set's questions together: each model's pooled difference
        report["pooled_diff_vs_base"] = {
            label: difference(
                joined([answered[n]["base"] for n in sets]),
                joined([answered[n][label] for n in sets]),
                METRICS,
            )
            for label in models
        }
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
