"""The learning curve (bench/learning_curve.py) with SFT's examples changed, to ask why SFT does
not carry over to new questions. Every other argument is the learning curve's:

    python bench/sft_variants.py shuffled-passages --reuse --workdir DIR --budgets 80
    python bench/sft_variants.py own-answers --reuse --workdir DIR --budgets 80

It trains SFT alone, and writes bench/results/learning_curve-sft-VARIANT.json unless --out
says where (never over the shipped curve).

- shuffled-passages: each reader example is also shown with its passages in two other orders,
  renumbered (three examples where it had one): the answer is the same wherever its passage
  stands, so what the adapter learns cannot be where the answer was.
- own-answers: the base model's own answers to the same training prompts, right or wrong,
  instead of the feedback: training with nothing to learn, to tell what any adapter costs the
  held-out answers from what the feedback teaches them.

Bench code only: it wraps the trainer's `load_feedback`; the product trains as it did.
"""

from __future__ import annotations

import random
import re
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import learning_curve  # noqa: E402

from sleuth.train import datasets, trainer  # noqa: E402

ORDERS = 3  # shuffled-passages: each reader example in this many orders of its passages
PASSAGE = re.compile(r"\n\n(?=\[\d+\] )")


def reordered(messages: list[dict], rng: random.Random) -> list[dict] | None:
    """The reader prompt with its numbered passages in another order, renumbered from 1;
    None where there is one passage (or the prompt is not the reader's)."""
    said = messages[-1]["content"]
    head, marker, rest = said.partition("Evidence:\n")
    body, ask, tail = rest.rpartition("\n\nQuestion:")
    blocks = PASSAGE.split(body)
    if not (marker and ask) or len(blocks) < 2:
        return None
    if not all(re.match(r"\[\d+\] ", block) for block in blocks):
        return None
    order = list(range(len(blocks)))
    while order == sorted(order):
        rng.shuffle(order)
    moved = [re.sub(r"^\[\d+\]", f"[{i + 1}]", blocks[j]) for i, j in enumerate(order)]
    said = head + marker + "\n\n".join(moved) + ask + tail
    return messages[:-1] + [{**messages[-1], "content": said}]


def shuffled_passages(store, feedback):
    """Each reader example also shown with its passages in two other orders, renumbered."""
    rng = random.Random(0)
    extra = []
    for example in feedback.sft:
        if example.reads:
            for _ in range(ORDERS - 1):
                messages = reordered(example.messages, rng)
                if messages is not None:
                    extra.append(replace(example, messages=messages))
    print(f"    SFT examples: {len(feedback.sft)} + {len(extra)} reordered", flush=True)
    feedback.sft = feedback.sft + extra
    rng.shuffle(feedback.sft)
    return feedback


def own_answers(store, feedback):
    """The base's own answers to the training prompts, right or wrong, instead of the
    feedback."""
    own = [
        answer
        for answer in store.feedback.rated_answers()
        if answer.reads and not datasets.is_heldout(answer.messages)
    ]
    own = datasets.distinct(own, lambda answer: (answer.messages, answer.text))
    print(f"    SFT examples: the base's own {len(own)}, not {len(feedback.sft)}", flush=True)
    feedback.sft = own
    return feedback


VARIANTS = {"shuffled-passages": shuffled_passages, "own-answers": own_answers}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: sft_variants.py {{{','.join(VARIANTS)}}} [learning_curve.py arguments]")
    name, argv = sys.argv[1], sys.argv[2:]
    change = VARIANTS[name]
    if any(arg.startswith("--pipeline") for arg in argv):
        sys.exit("sft_variants.py changes SFT's examples: it trains SFT alone (no --pipeline)")
    shown = list(argv)
    if not any(arg.startswith("--out") for arg in argv):  # never over the shipped curve
        out = f"learning_curve-sft-{name}.json"
        argv += ["--out", str(learning_curve.RESULTS / out)]
        shown += ["--out", f"bench/results/{out}"]
    load = datasets.load_feedback

    def load_feedback(store, *args, **kwargs):
        return change(store, load(store, *args, **kwargs))

    trainer.load_feedback = learning_curve.load_feedback = load_feedback
    learning_curve.main(
        argv,
        command=f"python bench/sft_variants.py {name} " + " ".join(shown),
        note=f"SFT variant {name}: " + " ".join(change.__doc__.split()),
    )


if __name__ == "__main__":
    main()
