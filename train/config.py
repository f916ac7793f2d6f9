"""Training configuration: one dataclass, help on every field, validated on creation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .errors import TrainConfigError

ALGORITHMS = ("sft", "dpo", "kto", "grpo")
DEFAULT_LR = {"sft": 2e-4, "dpo": 1e-4, "kto": 1e-4, "grpo": 5e-5}
DEFAULT_BETA = {"sft": 0.0, "dpo": 0.1, "kto": 0.1, "grpo": 0.04}


def _field(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    algo: str = _field("sft", "sft, dpo, kto or grpo")
    steps: int = _field(40, "optimizer steps")
    lr: float | None = _field(None, "learning rate (default depends on the algorithm)")
    lora_r: int = _field(8, "LoRA rank")
    lora_alpha: float | None = _field(None, "LoRA alpha (default: twice the rank)")
    beta: float | None = _field(
        None, "DPO/KTO temperature, GRPO KL weight (default depends on the algorithm)"
    )
    batch_size: int = _field(2, "examples (or pairs, or prompts for GRPO) per step")
    group_size: int = _field(4, "GRPO: answers sampled per prompt")
    max_length: int = _field(
        2048,
        "longest prompt + answer in tokens (writer prompts carry up to 1,500 tokens of evidence); "
        "longer examples are skipped",
    )
    max_new_tokens: int = _field(160, "GRPO and evaluation: longest sampled answer, in tokens")
    temperature: float = _field(1.0, "GRPO: sampling temperature of the rollouts")
    clip_eps: float = _field(0.2, "GRPO: ratio clipping")
    rollouts: str = _field("llama.cpp", "GRPO sampler: llama.cpp (fast) or transformers")
    grpo_over: str = _field(
        "auto",
        "GRPO samples: runs (the whole agent: plan, search the library, write; planner and "
        "writer tokens trained together), answers (the writer alone, on stored prompts), or "
        "auto (runs when the library has files, else answers)",
    )
    rollout_rounds: int = _field(
        1,
        "GRPO over runs: research rounds in a sampled run (1: plan, search, write; 2 adds a "
        "reflection and its searches); fewer rounds and less evidence make a step cheaper",
    )
    rollout_evidence_tokens: int = _field(
        800,
        "GRPO over runs: evidence a sampled run's writer reads, in tokens (the app's default is "
        "1,500; the trainer's forward and backward passes grow with it)",
    )
    calls: str = _field(
        "all",
        "which model calls DPO and KTO learn from: all (the writer's answers, and planner and "
        "reflection calls credited from whole runs) or writer",
    )
    references: str = _field(
        "",
        "a JSON Lines file of {question, answer}: reference answers that evaluation (and "
        "trajectory credit) judge correctness by, besides the user's corrections",
    )
    device: str = _field("auto", "auto, cpu or cuda")
    seed: int = _field(0, "seed for LoRA init, batch order and sampling")
    checkpoint_every: int = _field(10, "save a resumable checkpoint every this many steps")
    eval_limit: int = _field(12, "held-out prompts to evaluate on, at most")
    weight_decay: float = _field(0.0, "AdamW weight decay on the LoRA weights")
    gradient_checkpointing: bool = _field(
        True,
        "recompute each layer's activations in the backward pass: memory holds one layer's "
        "attention, not every layer's (DPO on 1,500-token writer prompts peaked at 22 GB "
        "without it on the 135M model), for about a third more compute",
    )

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise TrainConfigError(
                f"--algo must be one of {', '.join(ALGORITHMS)}, not {self.algo!r}."
            )
        if self.lr is None:
            self.lr = DEFAULT_LR[self.algo]
        if self.beta is None:
            self.beta = DEFAULT_BETA[self.algo]
        if self.lora_alpha is None:
            self.lora_alpha = 2.0 * self.lora_r
        checks = [
            (self.steps >= 1, "--steps must be at least 1"),
            (0 < self.lr < 1, "--lr must be between 0 and 1"),
            (1 <= self.lora_r <= 256, "--lora-r must be between 1 and 256"),
            (self.beta >= 0, "--beta must not be negative"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.group_size >= 2, "--group-size must be at least 2 (GRPO compares answers)"),
            (self.max_length >= 64, "--max-length must be at least 64"),
            (self.rollout_rounds >= 1, "--rollout-rounds must be at least 1"),
            (self.rollout_evidence_tokens >= 64, "--rollout-evidence-tokens must be at least 64"),
            (self.device in ("auto", "cpu", "cuda"), "--device must be auto, cpu or cuda"),
            (self.calls in ("all", "writer"), "--calls must be all or writer"),
            (
                self.grpo_over in ("auto", "runs", "answers"),
                "--grpo-over must be auto, runs or answers",
            ),
            (
                not (self.grpo_over == "runs" and self.rollouts == "transformers"),
                "GRPO over runs samples with llama.cpp: leave --rollouts at llama.cpp",
            ),
            (
                self.rollouts in ("llama.cpp", "transformers"),
                "rollouts must be llama.cpp or transformers",
            ),
            (self.checkpoint_every >= 1, "checkpoint_every must be at least 1"),
            (0 <= self.clip_eps < 1, "clip_eps must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainConfigError(message + ".")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}
