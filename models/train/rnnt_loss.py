"""RNN-T loss (Graves, 2012) with an analytic backward, no torchaudio.

The lattice has nodes (t, u), t < T frames, u <= U labels. From (t, u) a blank moves to (t + 1, u)
with log-prob ``blank[t, u]``; label y_{u+1} moves to (t, u + 1) with ``emit[t, u]``. The sequence
log-likelihood is ``L = alpha[T-1, U] + blank[T-1, U]``.

Forward variables are computed one frame at a time. Within frame t,

    alpha[t, u] = logaddexp(a[u], alpha[t, u-1] + emit[t, u-1]),   a[u] = alpha[t-1, u] + blank[t-1, u],

is a first-order linear recursion in the log semiring, so with E[u] = sum_{j<u} emit[t, j]:
``alpha[t, u] = E[u] + logcumsumexp_k(a[k] - E[k])``; the backward variables use the reversed
cumulative sum. The recursion runs in float64 (E reaches -1e3 and the differences a - E must
keep their digits). Gradients (Graves, eq. 16):

    dL/dblank[t, u] = exp(alpha[t, u] + blank[t, u] + beta[t+1, u] - L),
    dL/demit[t, u]  = exp(alpha[t, u] + emit[t, u] + beta[t, u+1] - L),

with beta[T, U] = 0 (the final blank) and beta[T, u != U] = -inf.
"""

from __future__ import annotations

import torch
from torch import Tensor

NEG = -1.0e4  # log-prob of a forbidden move: finite, so that a - E never meets inf - inf


def _forward_backward(blank: Tensor, emit: Tensor, T_len: Tensor, U_len: Tensor
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """alpha (B, T, U+1), beta (B, T+1, U+1), log-likelihood (B,), all float64.

    blank (B, T, U+1), emit (B, T, U) float64; emits at u >= U_b are already NEG.
    """
    B, T, U1 = blank.shape
    dev = blank.device
    ninf = torch.tensor(float("-inf"), dtype=blank.dtype, device=dev)
    zero_col = blank.new_zeros(B, 1)
    # E[t, u] = sum_{j<u} emit[t, j], shape (B, T, U+1)
    E = torch.cat([zero_col.unsqueeze(1).expand(B, T, 1), emit.cumsum(2)], 2)
    alpha = blank.new_empty(B, T, U1)
    a = torch.full((B, U1), float("-inf"), dtype=blank.dtype, device=dev)
    a[:, 0] = 0.0
    for t in range(T):
        if t > 0:
            a = alpha[:, t - 1] + blank[:, t - 1]
        Et = E[:, t]
        alpha[:, t] = Et + torch.logcumsumexp(a - Et, dim=1)
    u_idx = torch.arange(U1, device=dev)
    final = u_idx.unsqueeze(0) == U_len.unsqueeze(1)  # (B, U+1)
    init = torch.where(final, blank.new_zeros(()), ninf)  # beta at t = T_b
    beta = blank.new_empty(B, T + 1, U1)
    beta[:, T] = torch.where((T_len == T).unsqueeze(1), init, ninf)
    for t in range(T - 1, -1, -1):
        b = blank[:, t] + beta[:, t + 1]
        Et = E[:, t]
        val = torch.logcumsumexp((b + Et).flip(1), dim=1).flip(1) - Et
        live = (t < T_len).unsqueeze(1)
        start = (t == T_len).unsqueeze(1)
        beta[:, t] = torch.where(live, val, torch.where(start, init, ninf))
    b_idx = torch.arange(B, device=dev)
    loglike = alpha[b_idx, T_len - 1, U_len] + blank[b_idx, T_len - 1, U_len]
    return alpha, beta, loglike


class _RNNTLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, blank: Tensor, emit: Tensor, T_len: Tensor, U_len: Tensor) -> Tensor:
        dtype = blank.dtype
        bl, em = blank.detach().double(), emit.detach().double()
        U = em.shape[2]
        valid = torch.arange(U, device=em.device).view(1, 1, U) < U_len.view(-1, 1, 1)
        em = torch.where(valid, em, torch.full_like(em, NEG))
        alpha, beta, ll = _forward_backward(bl, em, T_len, U_len)
        L = ll.view(-1, 1, 1)
        g_blank = torch.exp(alpha + bl + beta[:, 1:] - L)
        in_time = torch.arange(em.shape[1], device=em.device).view(1, -1, 1) < T_len.view(-1, 1, 1)
        g_emit = torch.exp(alpha[:, :, :-1] + em + beta[:, :-1, 1:] - L) * (valid & in_time)
        ctx.save_for_backward(g_blank.to(dtype), g_emit.to(dtype))
        return (-ll).to(dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        g_blank, g_emit = ctx.saved_tensors
        g = -grad_out.view(-1, 1, 1)
        return g_blank * g, g_emit * g, None, None


def rnnt_loss_from_scores(blank: Tensor, emit: Tensor, T_len: Tensor, U_len: Tensor) -> Tensor:
    """Per-utterance negative log-likelihood from the lattice's move scores.

    Args:
        blank: (B, T, U+1) log-prob of blank at (t, u).
        emit: (B, T, U) log-prob of the next label y_{u+1} at (t, u).
        T_len: (B,) int64 frames per utterance (1 <= T_b <= T).
        U_len: (B,) int64 labels per utterance (0 <= U_b <= U).

    Returns:
        (B,) -log p(y | x), differentiable w.r.t. ``blank`` and ``emit``.
    """
    return _RNNTLoss.apply(blank, emit, T_len.long(), U_len.long())


def rnnt_loss(logp: Tensor, labels: Tensor, T_len: Tensor, U_len: Tensor,
              reduction: str = "mean") -> Tensor:
    """RNN-T loss from joint log-probabilities.

    Args:
        logp: (B, T, U+1, V) log-probabilities (``models.rnnt.RNNT.forward``); blank = 0.
        labels: (B, U) int64 targets, padded beyond U_len with any valid label.
        T_len, U_len: (B,) lengths.
        reduction: ``none`` (B,), ``sum``, ``mean`` (over utterances), or ``mean_label`` (sum
            divided by the total number of labels, a per-label loss in nats).

    Returns:
        The reduced loss.
    """
    B, T, U1, V = logp.shape
    blank = logp[..., 0]
    emit = logp[:, :, :-1, :].gather(3, labels[:, None, :, None].expand(B, T, U1 - 1, 1)).squeeze(3)
    per = rnnt_loss_from_scores(blank, emit, T_len, U_len)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    if reduction == "mean":
        return per.mean()
    if reduction == "mean_label":
        return per.sum() / U_len.sum().clamp(min=1)
    raise ValueError(f"unknown reduction {reduction!r}")


def rnnt_loss_bruteforce(logp: Tensor, labels: Tensor) -> Tensor:
    """-log p(y | x) of ONE utterance by enumerating every alignment (tests only; tiny T, U).

    Args:
        logp: (T, U+1, V); labels: (U,).
    """
    T, U1, _ = logp.shape
    U = U1 - 1
    import itertools

    total = []
    # an alignment = positions of the U labels among T + U moves, ending with a blank
    for pos in itertools.combinations(range(T + U - 1), U):
        t = u = 0
        s = logp.new_zeros(())
        pos_set = set(pos)
        for k in range(T + U - 1):
            if k in pos_set:
                s = s + logp[t, u, labels[u]]
                u += 1
            else:
                s = s + logp[t, u, 0]
                t += 1
        s = s + logp[T - 1, U, 0]
        total.append(s)
    return -torch.logsumexp(torch.stack(total), 0)


__all__ = ["rnnt_loss", "rnnt_loss_from_scores", "rnnt_loss_bruteforce"]
