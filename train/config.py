"""Training configuration: one dataclass whose fields carry their help, allowed values and
bounds (store/schema.py, the same schema as the settings); validated on creation, and the
source of `sleuth train`'s flags (train/cli.py `add_arguments`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from sleuth.store.schema import check, option

from .errors import TrainConfigError

# "reward": no adapter; a reward model over the reader's candidates (train/reward_run.py)
ALGORITHMS = ("sft", "dpo", "kto", "grpo", "reward")
DEFAULT_LR = {"sft": 2e-4, "dpo": 1e-4, "kto": 1e-4, "grpo": 5e-5}  # reward: fitted exactly
DEFAULT_BETA = {"sft": 0.0, "dpo": 0.1, "kto": 0.1, "grpo": 0.04, "reward": 0.0}
# DPO with the IPO loss: a target margin of 1 nat per token. TRL's default of 0.1 (5 nats)
# moved more held-out answers for the worse (bench/README.md, "Tried, and did not pay").
IPO_BETA = 0.5


@dataclass
class TrainConfig:
    algo: str = option("sft", "the algorithm", ALGORITHMS)
    steps: int = option(40, "optimizer steps", at_least=1)
    lr: float | None = option(
        None, "learning rate (default depends on the algorithm)", at_most=0.999
    )
    lora_r: int = option(8, "LoRA rank", at_least=1, at_most=256)
    lora_alpha: float | None = option(None, "LoRA alpha (default: twice the rank)")
    beta: float | None = option(
        None,
        "DPO/KTO temperature, GRPO KL weight (default depends on the algorithm; 0.5 for DPO's "
        "IPO loss)",
        at_least=0,
    )
    sft_weight: float = option(
        0.0,
        "DPO: weight of the chosen answers' negative log-likelihood per token, added to the "
        "loss (RPO; TRL's loss_type sigmoid + sft): keeps a chosen answer, its end too, likely "
        "while DPO widens the margin",
        at_least=0,
    )
    dpo_loss: str = option(
        "sigmoid",
        "DPO's loss: sigmoid (Rafailov et al.: the log-ratio margin summed over the answer's "
        "tokens, pushed ever wider) or ipo (Azar et al., as TRL computes it: the margin per "
        "token, held at 1/(2 beta) by a squared loss, so a rejected answer is not pushed down "
        "without end and a longer answer is not favoured)",
        ("sigmoid", "ipo"),
    )
    batch_size: int = option(2, "examples (or pairs, or prompts for GRPO) per step", at_least=1)
    group_size: int = option(
        4, "GRPO: answers sampled per prompt (2 at least: GRPO compares them)", at_least=2
    )
    max_length: int = option(
        2048,
        "longest prompt + answer in tokens (writer prompts carry up to 1,500 tokens of evidence); "
        "longer examples are skipped",
        at_least=64,
    )
    max_new_tokens: int = option(
        160, "GRPO and evaluation: longest sampled answer, in tokens", at_least=1
    )
    temperature: float = option(1.0, "GRPO: sampling temperature of the rollouts")
    clip_eps: float = option(0.2, "GRPO: ratio clipping", at_least=0, at_most=0.99)
    rollouts: str = option(
        "llama.cpp", "GRPO sampler: llama.cpp (fast) or transformers", ("llama.cpp", "transformers")
    )
    grpo_over: str = option(
        "auto",
        "GRPO samples: runs (the whole agent: plan, search the library, write; planner and "
        "writer tokens trained together), answers (the writer alone, on stored prompts), or "
        "auto (runs when the library has files, else answers)",
        ("auto", "runs", "answers"),
    )
    rollout_rounds: int = option(
        1,
        "GRPO over runs: research rounds in a sampled run (1: plan, search, write; 2 adds a "
        "reflection and its searches); fewer rounds and less evidence make a step cheaper",
        at_least=1,
    )
    rollout_evidence_tokens: int = option(
        800,
        "GRPO over runs: evidence a sampled run's writer reads, in tokens (the app's default is "
        "1,500; the trainer's forward and backward passes grow with it)",
        at_least=64,
    )
    calls: str = option(
        "all",
        "which model calls DPO and KTO learn from: all (the writer's answers, and planner and "
        "reflection calls credited from whole runs) or writer",
        ("all", "writer"),
    )
    references: str = option(
        "",
        "a JSON Lines file of {question, answer}: reference answers that evaluation (and "
        "trajectory credit) judge correctness by, besides the user's corrections",
    )
    device: str = option("auto", "where to train", ("auto", "cpu", "cuda"))
    seed: int = option(0, "seed for LoRA init, batch order and sampling", at_least=0)
    checkpoint_every: int = option(
        10, "save a resumable checkpoint every this many steps", at_least=1
    )
    eval_limit: int = option(12, "held-out prompts to evaluate on, at most", at_least=0)
    weight_decay: float = option(0.0, "AdamW weight decay on the LoRA weights", at_least=0)
    gradient_checkpointing: bool = option(
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
            self.lr = DEFAULT_LR.get(self.algo)
        if self.beta is None:
            ipo = self.algo == "dpo" and self.dpo_loss == "ipo"
            self.beta = IPO_BETA if ipo else DEFAULT_BETA[self.algo]
        if self.lora_alpha is None:
            self.lora_alpha = 2.0 * self.lora_r
        for spec in fields(self):
            problem = check(flag(spec.name), getattr(self, spec.name), spec)
            if problem:
                raise TrainConfigError(problem + ".")
        if self.sft_weight and self.algo != "dpo":
            raise TrainConfigError(
                f"--sft-weight is DPO's (the chosen answers' likelihood); --algo is {self.algo}."
            )
        if self.dpo_loss != "sigmoid" and self.algo != "dpo":
            raise TrainConfigError(f"--dpo-loss is DPO's; --algo is {self.algo}.")
        if self.dpo_loss == "ipo" and self.beta <= 0:
            raise TrainConfigError(
                "--beta must be above 0 with --dpo-loss ipo (its target margin is 1/(2 beta))."
            )
        if self.grpo_over == "runs" and self.rollouts == "transformers":
            raise TrainConfigError(
                "GRPO over runs samples with llama.cpp: leave --rollouts at llama.cpp."
            )

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in fields(cls)}


def flag(name: str) -> str:
    """The command-line flag of a field: lora_r -> --lora-r."""
    return "--" + name.replace("_", "-")
