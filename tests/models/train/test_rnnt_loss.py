"""RNN-T loss: brute-force enumeration of alignments, gradcheck in float64, batching."""

from __future__ import annotations

import pytest
import torch

from models.train.rnnt_loss import rnnt_loss, rnnt_loss_bruteforce, rnnt_loss_from_scores

torch.set_num_threads(1)


def _random_lattice(B, T, U, V, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, U + 1, V, generator=g, dtype=dtype) * 2
    labels = torch.randint(1, V, (B, U), generator=g)
    return torch.log_softmax(logits, -1), labels


@pytest.mark.parametrize("T,U", [(1, 0), (1, 2), (3, 1), (4, 3), (2, 5), (5, 2)])
def test_matches_bruteforce(T, U):
    logp, labels = _random_lattice(1, T, U, 5, seed=T * 10 + U)
    got = rnnt_loss(logp, labels, torch.tensor([T]), torch.tensor([U]), reduction="none")
    want = rnnt_loss_bruteforce(logp[0], labels[0])
    assert got.item() == pytest.approx(want.item(), rel=1e-10, abs=1e-10)


def test_golden_two_frames_one_label():
    # T=2, U=1: alignments (y, b, b) and (b, y, b); uniform log-probs log(1/2) for V=2
    logp = torch.full((1, 2, 2, 2), 0.5).log().double()
    labels = torch.tensor([[1]])
    got = rnnt_loss(logp, labels, torch.tensor([2]), torch.tensor([1]), reduction="none")
    assert got.item() == pytest.approx(-torch.log(torch.tensor(2 * 0.125)).item())


def test_batched_with_padding_equals_single():
    B, T, U, V = 4, 6, 4, 6
    logp, labels = _random_lattice(B, T, U, V, seed=3)
    T_len, U_len = torch.tensor([6, 3, 5, 1]), torch.tensor([4, 2, 0, 3])
    got = rnnt_loss(logp, labels, T_len, U_len, reduction="none")
    for b in range(B):
        t, u = int(T_len[b]), int(U_len[b])
        want = rnnt_loss_bruteforce(logp[b, :t, : u + 1], labels[b, :u])
        assert got[b].item() == pytest.approx(want.item(), rel=1e-9)


def test_gradcheck_float64():
    B, T, U = 3, 4, 3
    g = torch.Generator().manual_seed(1)
    blank = torch.randn(B, T, U + 1, generator=g, dtype=torch.float64).neg().abs().neg().requires_grad_()
    emit = torch.randn(B, T, U, generator=g, dtype=torch.float64).abs().neg().requires_grad_()
    T_len, U_len = torch.tensor([4, 2, 3]), torch.tensor([3, 1, 0])
    assert torch.autograd.gradcheck(lambda b, e: rnnt_loss_from_scores(b, e, T_len, U_len),
                                    (blank, emit), eps=1e-6, atol=1e-7)


def test_gradient_through_log_softmax_matches_bruteforce_autograd():
    logp_logits = torch.randn(1, 3, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([[2, 3]])
    x1 = logp_logits.clone().requires_grad_()
    rnnt_loss(torch.log_softmax(x1, -1), labels, torch.tensor([3]), torch.tensor([2])).backward()
    x2 = logp_logits.clone().requires_grad_()
    rnnt_loss_bruteforce(torch.log_softmax(x2, -1)[0], labels[0]).backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-10)


def test_float32_long_utterance_is_finite_and_close_to_float64():
    logp, labels = _random_lattice(2, 300, 120, 29, seed=7, dtype=torch.float32)
    T_len, U_len = torch.tensor([300, 250]), torch.tensor([120, 90])
    x = logp.clone().requires_grad_()
    loss32 = rnnt_loss(x, labels, T_len, U_len, reduction="sum")
    loss32.backward()
    loss64 = rnnt_loss(logp.double(), labels, T_len, U_len, reduction="sum")
    assert torch.isfinite(x.grad).all()
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-5)
    # gradient w.r.t. log-probs of each frame's moves sums to the expected number of visits
    assert x.grad[0, :, :, :].sum().item() == pytest.approx(-(300 + 120), rel=1e-4)
