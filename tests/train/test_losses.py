"""Losses: hand-computed tiny cases, naive references, and TRL's trainers on identical batches."""

from __future__ import annotations

import copy
import math
import os
import warnings

import pytest
import torch
import torch.nn.functional as F

from sleuth.train import losses


def test_token_logprobs_matches_full_log_softmax_and_its_gradient():
    torch.manual_seed(0)
    hidden = torch.randn(2, 37, 16, requires_grad=True)  # (B, T, H)
    weight = torch.randn(50, 16, requires_grad=True)  # (V, H)
    targets = torch.randint(0, 50, (2, 37))
    ours = losses.token_logprobs(hidden, weight, targets, chunk=8)  # chunks that do not divide T
    reference = (hidden @ weight.T).log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(ours, reference, atol=1e-5)
    grad_ours = torch.autograd.grad(ours.sum(), [hidden, weight])
    grad_ref = torch.autograd.grad(reference.sum(), [hidden, weight])
    for a, b in zip(grad_ours, grad_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-4)


def test_completion_logprobs_equal_masked_token_logprobs_and_their_gradient():
    torch.manual_seed(1)
    hidden = torch.randn(3, 10, 6, requires_grad=True)
    weight = torch.randn(40, 6)
    targets = torch.randint(0, 40, (3, 10))
    mask = torch.zeros(3, 10)
    mask[0, 4:9] = 1
    mask[1, 7:10] = 1  # row 2: no completion at all
    expected = losses.token_logprobs(hidden, weight, targets, softcap=2.0) * mask
    (grad_expected,) = torch.autograd.grad(expected.sum(), hidden)
    ours = losses.completion_logprobs(hidden, weight, targets, mask, chunk=3, softcap=2.0)
    (grad_ours,) = torch.autograd.grad(ours.sum(), hidden)
    assert torch.allclose(ours, expected, atol=1e-6)
    assert torch.allclose(grad_ours, grad_expected, atol=1e-6)
    assert float(grad_ours[2].abs().sum()) == 0.0


def test_token_logprobs_with_softcap():
    torch.manual_seed(1)
    hidden, weight = torch.randn(1, 5, 4), torch.randn(9, 4)
    targets = torch.randint(0, 9, (1, 5))
    logits = torch.tanh((hidden @ weight.T) / 3.0) * 3.0
    reference = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(
        losses.token_logprobs(hidden, weight, targets, softcap=3.0), reference, atol=1e-6
    )


def test_sft_loss_by_hand():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    assert losses.sft_loss(logprobs, mask).item() == pytest.approx((2 + 3 + 6) / 3)


def test_dpo_loss_by_hand():
    loss, chosen, rejected = losses.dpo_loss(
        torch.tensor([-10.0]),
        torch.tensor([-12.0]),
        torch.tensor([-11.0]),
        torch.tensor([-11.0]),
        beta=0.5,
    )
    # margin = (-10 + 11) - (-12 + 11) = 2; loss = -log sigmoid(0.5 * 2)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))))
    assert chosen.item() == pytest.approx(0.5) and rejected.item() == pytest.approx(-0.5)


def test_ipo_loss_by_hand():
    """Each side's log-ratio per token; the squared distance of their difference from
    1/(2 beta). A pair already that far apart costs nothing, one further apart costs again."""
    args = dict(chosen_tokens=torch.tensor([2.0, 4.0]), rejected_tokens=torch.tensor([1.0, 4.0]))
    loss, chosen, rejected = losses.ipo_loss(
        torch.tensor([-10.0, -4.0]),
        torch.tensor([-12.0, -12.0]),
        torch.tensor([-11.0, -8.0]),
        torch.tensor([-11.0, -8.0]),
        beta=0.5,
        **args,
    )
    # per token: pair 1 (1/2) - (-1/1) = 1.5, pair 2 (4/4) - (-4/4) = 2; target 1/(2*0.5) = 1
    assert loss.item() == pytest.approx(((1.5 - 1) ** 2 + (2 - 1) ** 2) / 2)
    assert chosen.tolist() == pytest.approx([0.25, 0.5])
    assert rejected.tolist() == pytest.approx([-0.5, -0.5])
    at_target, _, _ = losses.ipo_loss(
        torch.tensor([-10.0]),
        torch.tensor([-11.0]),
        torch.tensor([-10.0]),
        torch.tensor([-10.0]),
        torch.tensor([3.0]),
        torch.tensor([1.0]),
        beta=0.5,
    )
    assert at_target.item() == 0.0


def test_kto_loss_by_hand():
    policy, ref = torch.tensor([-5.0, -7.0]), torch.tensor([-6.0, -6.0])
    labels = torch.tensor([True, False])
    kl = torch.tensor(0.25)
    loss = losses.kto_loss(policy, ref, labels, kl, beta=0.1)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    desirable = 1 - sigmoid(0.1 * (1.0 - 0.25))
    undesirable = 1 - sigmoid(0.1 * (0.25 - (-1.0)))
    assert loss.item() == pytest.approx((desirable + undesirable) / 2, rel=1e-6)
    assert losses.kto_kl_estimate(torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -2.0])) == 0.0
    assert losses.kto_kl_estimate(torch.tensor([-1.0, -1.0]), torch.tensor([-2.0, -2.0])) == 1.0


def test_group_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    advantages = losses.group_advantages(rewards)
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std()
    assert torch.allclose(advantages[0], (rewards[0] - 0.5) / (std + 1e-4))
    assert torch.equal(advantages[1], torch.zeros(4))  # a collapsed group teaches nothing


def naive_grpo(logprobs, old, ref, advantages, mask, beta, eps):
    total = 0.0
    for b in range(logprobs.shape[0]):
        terms = []
        for t in range(logprobs.shape[1]):
            if mask[b, t] == 0:
                continue
            ratio = math.exp(logprobs[b, t] - old[b, t])
            clipped = min(max(ratio, 1 - eps), 1 + eps)
            a = float(advantages[b])
            delta = float(ref[b, t] - logprobs[b, t])
            kl = math.exp(delta) - delta - 1
            terms.append(-min(ratio * a, clipped * a) + beta * kl)
        total += sum(terms) / max(len(terms), 1)
    return total / logprobs.shape[0]


def test_grpo_loss_against_a_naive_loop():
    torch.manual_seed(3)
    logprobs = -torch.rand(3, 6) * 3
    old = logprobs + torch.randn(3, 6) * 0.3  # ratios outside the clip range too
    ref = logprobs + torch.randn(3, 6) * 0.2
    advantages = torch.tensor([1.2, -0.7, 0.0])
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 0, 0]]).float()
    loss, kl = losses.grpo_loss(logprobs, old, ref, advantages, mask, beta=0.04, clip_eps=0.2)
    assert loss.item() == pytest.approx(
        naive_grpo(logprobs, old, ref, advantages, mask, 0.04, 0.2), rel=1e-5
    )
    assert kl.item() >= 0


def test_bradley_terry_by_hand():
    loss = losses.bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2.0)))


# -- against TRL on identical inputs -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_policy(tiny_hf):
    """A tiny llama policy and a different reference, with the real SmolLM2 tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tiny_hf.tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    reference = LlamaForCausalLM(config)
    policy = copy.deepcopy(reference)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return policy, reference, tiny_hf.tokenizer


def _ours_per_token(model, input_ids, attention_mask, completion_mask):
    """Our per-token completion log-probs (B, T-1) on TRL's batch layout."""
    hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[
        :, :-1
    ]
    mask = completion_mask[:, 1:].float()
    return losses.token_logprobs(hidden, model.lm_head.weight, input_ids[:, 1:]) * mask, mask


def _trl_first_batch(trainer_cls, args, rows, tiny_policy):
    """TRL's trainer on copies of the tiny models: its first batch and its loss on it."""
    from datasets import Dataset

    policy, reference, tokenizer = tiny_policy
    trainer = trainer_cls(
        model=copy.deepcopy(policy),
        ref_model=copy.deepcopy(reference),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    return batch, trainer.compute_loss(trainer.model, batch).item()


def _ours_sequence_logprobs(tiny_policy, batch, prefix=""):
    """Policy and reference sequence log-probs of the completions in TRL's batch (`prefix`
    "KL_" picks KTO's mismatched pairs)."""
    policy, reference, _ = tiny_policy
    inputs = [batch[prefix + key] for key in ("input_ids", "attention_mask", "completion_mask")]
    with torch.no_grad():
        lp, mask = _ours_per_token(policy, *inputs)
        ref_lp, _ = _ours_per_token(reference, *inputs)
    return losses.sequence_logprob(lp, mask), losses.sequence_logprob(ref_lp, mask)


def _quiet():
    os.environ.setdefault("WANDB_DISABLED", "true")
    warnings.filterwarnings("ignore")
    import datasets

    datasets.disable_progress_bars()


CONVERSATIONS = [
    ("What flows through Lyon?", "The Rhône flows through Lyon [1].", "Paris."),
    ("Who founded Lyon?", "Plancus founded it [2].", "Nobody knows, truly."),
    ("When was the tower built?", "In 1889 [1].", "Last year, I think."),
    ("What is the Saône?", "A river that joins the Rhône [1].", "A mountain."),
]


def _trl_dpo_first_batch(tiny_policy, tmp_path, **loss):
    """TRL's DPO trainer (beta 0.3, `loss`: its loss_type and loss_weights) on CONVERSATIONS'
    pairs: its first batch and its loss on it."""
    from trl import DPOConfig, DPOTrainer

    _quiet()
    rows = [
        {
            "prompt": [{"role": "user", "content": q}],
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
        }
        for q, c, r in CONVERSATIONS
    ]
    args = DPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        report_to="none",
        beta=0.3,
        max_length=256,
        use_cpu=True,
        bf16=False,
        **loss,
    )
    return _trl_first_batch(DPOTrainer, args, rows, tiny_policy)


@pytest.mark.parametrize("sft_weight", [0.0, 0.5])
def test_dpo_loss_equals_trls_on_the_same_batch(tiny_policy, tmp_path, sft_weight):
    """Plain DPO, and DPO with the chosen side's NLL added (`--sft-weight`, RPO: TRL's
    loss_type sigmoid + sft), as train/steps/dpo.py puts them together."""
    batch, trl_loss = _trl_dpo_first_batch(
        tiny_policy,
        tmp_path,
        loss_type=["sigmoid", "sft"] if sft_weight else ["sigmoid"],
        loss_weights=[1.0, sft_weight] if sft_weight else None,
    )
    seq, ref_seq = _ours_sequence_logprobs(tiny_policy, batch)
    n = len(CONVERSATIONS)
    ours, _, _ = losses.dpo_loss(seq[:n], seq[n:], ref_seq[:n], ref_seq[n:], beta=0.3)
    if sft_weight:
        policy = tiny_policy[0]
        inputs = [batch[key] for key in ("input_ids", "attention_mask", "completion_mask")]
        with torch.no_grad():
            per_token, mask = _ours_per_token(policy, *inputs)
        nll = losses.sft_loss(per_token[:n], mask[:n])
        assert nll.item() > 0.1  # a term big enough to tell apart
        ours = ours + sft_weight * nll
    assert ours.item() == pytest.approx(trl_loss, rel=1e-4)
    assert abs(ours.item() - math.log(2)) > 1e-3  # the models differ: not the trivial value


def test_ipo_loss_equals_trls_on_the_same_batch(tiny_policy, tmp_path):
    """`--dpo-loss ipo` as train/steps/dpo.py computes it: TRL's loss_type ipo, whose log-ratios
    are per completion token."""
    batch, trl_loss = _trl_dpo_first_batch(tiny_policy, tmp_path, loss_type=["ipo"])
    seq, ref_seq = _ours_sequence_logprobs(tiny_policy, batch)
    tokens = batch["completion_mask"][:, 1:].float().sum(-1)
    n = len(CONVERSATIONS)
    assert len(set(tokens.tolist())) > 1  # lengths differ: per token is not per answer
    ours, _, _ = losses.ipo_loss(
        seq[:n], seq[n:], ref_seq[:n], ref_seq[n:], tokens[:n], tokens[n:], beta=0.3
    )
    assert ours.item() == pytest.approx(trl_loss, rel=1e-4)
    summed, _, _ = losses.ipo_loss(
        seq[:n], seq[n:], ref_seq[:n], ref_seq[n:], torch.ones(n), torch.ones(n), beta=0.3
    )
    assert summed.item() != pytest.approx(trl_loss, rel=1e-2)  # the division is what matches


def test_kto_loss_equals_trls_on_the_same_batch(tiny_policy, tmp_path):
    from trl import KTOConfig, KTOTrainer

    _quiet()
    rows = []
    for q, good, bad in CONVERSATIONS:
        rows.append(
            {
                "prompt": [{"role": "user", "content": q}],
                "completion": [{"role": "assistant", "content": good}],
                "label": True,
            }
        )
        rows.append(
            {
                "prompt": [{"role": "user", "content": q}],
                "completion": [{"role": "assistant", "content": bad}],
                "label": False,
            }
        )
    args = KTOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        report_to="none",
        beta=0.2,
        max_length=256,
        use_cpu=True,
        disable_dropout=True,
        bf16=False,
    )
    batch, trl_loss = _trl_first_batch(KTOTrainer, args, rows, tiny_policy)
    seq, ref_seq = _ours_sequence_logprobs(tiny_policy, batch)
    kl = losses.kto_kl_estimate(*_ours_sequence_logprobs(tiny_policy, batch, prefix="KL_"))
    labels = torch.as_tensor(batch["label"], dtype=torch.bool)
    ours = losses.kto_loss(seq, ref_seq, labels, kl, beta=0.2)
    assert ours.item() == pytest.approx(trl_loss, rel=1e-4)


def test_grpo_loss_equals_trls_on_the_same_inputs(tiny_policy, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    _quiet()
    policy, reference, tokenizer = tiny_policy
    # beta=0 at construction keeps TRL from loading a reference model from the hub; the loss
    # takes the reference log-probs as an input, so the KL weight is set afterwards.
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        report_to="none",
        beta=0.0,
        epsilon=0.2,
        loss_type="grpo",
        use_cpu=True,
        max_completion_length=16,
        use_bias_correction_kl=False,  # classic k3 KL
        bf16=False,
    )  # TRL autocasts to bf16 by default; compare in fp32
    dataset = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": q}]} for q, _, _ in CONVERSATIONS]
    )
    trainer = GRPOTrainer(
        model=copy.deepcopy(policy),
        reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    torch.manual_seed(5)
    prompt_ids = torch.randint(10, 1000, (4, 6))
    completion_ids = torch.randint(10, 1000, (4, 5))
    completion_mask = torch.tensor(
        [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0]]
    )
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.ones_like(input_ids)
    with torch.no_grad():
        full_mask = torch.cat([torch.zeros_like(prompt_ids), completion_mask], dim=1)
        lp, _ = _ours_per_token(policy, input_ids, attention, full_mask)
        ref_lp, _ = _ours_per_token(reference, input_ids, attention, full_mask)
    lp, ref_lp = lp[:, -5:], ref_lp[:, -5:]  # the completion positions
    old = lp + torch.randn_like(lp) * 0.3
    advantages = torch.tensor([1.0, -0.5, 0.3, -0.8])
    inputs = {
        "prompt_ids": prompt_ids,
        "prompt_mask": torch.ones_like(prompt_ids),
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": advantages,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref_lp,
    }
    trainer.beta = 0.04
    trainer.current_gradient_accumulation_steps = 1  # set by TRL's training loop, not by init
    trainer.model.train()
    trl_loss = trainer._compute_loss(trainer.model, inputs).item()
    ours, _ = losses.grpo_loss(
        lp, old, ref_lp, advantages, completion_mask.float(), beta=0.04, clip_eps=0.2
    )
    assert ours.item() == pytest.approx(trl_loss, rel=1e-4)


def test_dpo_gradient_prefers_the_chosen_answer():
    # One gradient step on the DPO loss raises the chosen log-prob relative to the rejected.
    chosen = torch.tensor([-3.0], requires_grad=True)
    rejected = torch.tensor([-3.0], requires_grad=True)
    loss, _, _ = losses.dpo_loss(
        chosen, rejected, torch.tensor([-3.0]), torch.tensor([-3.0]), beta=0.1
    )
    loss.backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()
    assert F.logsigmoid(torch.tensor(0.0)).item() == pytest.approx(-math.log(2))
