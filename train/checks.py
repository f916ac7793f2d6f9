"""How an answer is judged without a model: the hard checks, correctness against a reference,
and the gated reward that combines them. No torch here: `sleuth export`, the trajectory
credit (train/credit.py) and the benchmarks use it as well as the trainer.

Hard checks (each a pure function of the answer and the evidence it was written from):
  cites      at least one citation, and every [n] points at real evidence
  grounded   every cited sentence is supported by the evidence it cites
  format     prose, not a copy of the prompt or of the evidence list, no repetition loop
  length     between MIN_WORDS and MAX_WORDS words

Correctness, where a reference answer exists (the user's correction, or a question file):
the standard extractive-QA normalisation, exact match and token F1, computed on the answer's
first sentence (the writer is asked for the answer first, then the support), and "contains":
the reference appears anywhere in the answer.

The gated reward: failing any hard check caps it at FAIL_CAP, in proportion to the checks
passed; a passing answer scores 0.5 to 1.0 from what else is known of it: the learned
preference, and token F1 against the reference (after the gate, as in DeepResearcher).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

from sleuth.agent.citations import cited_numbers, strip_citations
from sleuth.agent.research.checks import problems
from sleuth.agent.research.verify import verify
from sleuth.agent.text import sentences

MIN_WORDS = 5
MAX_WORDS = 250
FAIL_CAP = 0.4  # the most a failing answer can score; a passing one scores 0.5 to 1.0
CHECKS = ("cites", "grounded", "format", "length")
QUOTED = "Quoted from the sources"  # how the extractive fallback opens (agent/research/checks.py)


@dataclass
class Checked:
    """An answer's hard checks and the verification they came from."""

    checks: dict[str, bool]
    verification: dict
    citations: int

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    @property
    def validity(self) -> tuple[int, int]:
        """(citations that point at real evidence, citations written)."""
        valid = self.verification["citations"]
        return valid, valid + self.verification["dangling_removed"]

    @property
    def support(self) -> tuple[int, int]:
        """(cited sentences supported by what they cite, cited sentences)."""
        cited = self.verification["cited_sentences"]
        return cited - len(self.verification["unsupported"]), cited


def cites(text: str, n_evidence: int) -> bool:
    """At least one citation, and none pointing past the evidence."""
    numbers = cited_numbers(text)
    return bool(numbers) and all(1 <= n <= n_evidence for n in numbers)


def well_formed(text: str, evidence: list[dict] | None = None) -> bool:
    """Prose rather than a loop, citation markers, a copy of the prompt or of the evidence list:
    the same checks the research loop makes before it shows an answer (agent/research/checks.py)."""
    return not problems(text, evidence=evidence)


def length_ok(text: str) -> bool:
    return MIN_WORDS <= len(text.split()) <= MAX_WORDS


def hard_checks(text: str, evidence: list[dict]) -> Checked:
    """All hard checks of one answer against its evidence."""
    checked = verify(text, evidence)
    grounded = bool(checked.citations) and all(c["supported"] for c in checked.citations)
    return Checked(
        checks={
            "cites": cites(text, len(evidence)),
            "grounded": grounded,
            "format": well_formed(text, evidence),
            "length": length_ok(text),
        },
        verification=checked.verification,
        citations=checked.verification["citations"],
    )


def gated_reward(
    checked: Checked, preference: float | None = None, f1: float | None = None
) -> float:
    """0.5 + 0.5 * (the mean of the preference and the F1 that are known; 1.0 when neither
    is) when every hard check passes; otherwise at most FAIL_CAP, by the checks passed."""
    if checked.passed:
        known = [float(v) for v in (preference, f1) if v is not None]
        return 0.5 + 0.5 * (sum(known) / len(known) if known else 1.0)
    passed = sum(checked.checks.values())
    return FAIL_CAP * passed / len(checked.checks)


# -- correctness against a reference ----------------------------------------------------------


def normalize_answer(text: str) -> str:
    """The standard extractive-QA answer normalisation: lower case, no punctuation, articles
    or extra space."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def f1(prediction: str, gold: str) -> float:
    """Token F1 as in the official evaluation (yes/no/noanswer must match exactly)."""
    pred, truth = normalize_answer(prediction), normalize_answer(gold)
    if pred in {"yes", "no", "noanswer"} or truth in {"yes", "no", "noanswer"}:
        if pred != truth:
            return 0.0
    pred_tokens, truth_tokens = pred.split(), truth.split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def answer_contains(prediction: str, gold: str) -> bool:
    """Whether the normalised gold answer appears in a longer free-text answer (how a
    sentence-length answer is judged when EM would need the bare span)."""
    gold_norm = normalize_answer(gold)
    return bool(gold_norm) and f" {gold_norm} " in f" {normalize_answer(prediction)} "


def uncited(text: str) -> str:
    """`text` on one line without its citation markers, and no space left before punctuation
    ("Harwick [1]." -> "Harwick.")."""
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(strip_citations(text).split()))


def answer_span(text: str) -> str:
    """The answer's first sentence without its citations: what the writer is asked to put
    first. A yes/no answer ("Yes, both are ...") is its first word; quoted evidence (the
    fallback when the model's answers were rejected) is no answer of the model's."""
    text = text.strip()
    if not text or text.startswith(QUOTED):
        return ""
    first = uncited(sentences(text)[0] if sentences(text) else text)
    word = normalize_answer(first).split()[:1]
    if word and word[0] in ("yes", "no"):
        return word[0]
    return first


@dataclass(frozen=True)
class Correctness:
    em: float  # the answer span equals the reference (normalised)
    f1: float  # token F1 of the answer span against the reference
    contains: float  # the reference appears anywhere in the answer

    def as_dict(self) -> dict[str, float]:
        return {"em": self.em, "f1": self.f1, "contains": self.contains}


def correctness(answer: str, reference: str) -> Correctness:
    """How right an answer is against a reference: EM and F1 of its answer span, and whether
    the reference is anywhere in what the model said (quoted sources are not its words: the
    quoted-evidence fallback, and the "> " lines a reader's short answer stands over)."""
    span = answer_span(answer)
    said = "\n".join(line for line in answer.splitlines() if not line.lstrip().startswith(">"))
    whole = "" if answer.strip().startswith(QUOTED) else strip_citations(said)
    return Correctness(
        em=float(bool(span) and exact_match(span, reference)),
        f1=f1(span, reference) if span else 0.0,
        contains=float(answer_contains(whole, reference)),
    )
