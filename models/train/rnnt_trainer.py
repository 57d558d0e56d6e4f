"""Train the FP32 RNN-T on the synthetic corpus with the RNN-T loss (resumable).

The encoder sees globally normalized features during training; ``finalize`` folds the
normalization into the first encoder layer so that the saved model takes raw
``models.features.features_for`` output like every other consumer (search, trace, funcsim).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.config import ModelConfig
from models.lstm import set_fused
from models.train.batching import (FeatureNorm, collate, epoch_batches, fold_norm_into_encoder,
                                   labels_of, make_acoustic_batches)
from models.train.augment import AugmentConfig, augment
from models.train.loop import Clock, Schedule, load_state, run_steps, save_atomic
from models.train.rnnt_loss import rnnt_loss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RNNTTrainConfig:
    """Settings of one RNN-T training run.

    Attributes:
        max_steps: optimizer steps (the schedule decays towards this step).
        time_budget_s: stop early (after a checkpoint) once this much wall time has been used.
        max_frames: padded input frames per batch (10 ms each); max_batch: utterances per batch.
        lr, warmup_steps: Adam peak learning rate and warm-up.
        clip_norm: gradient-norm clip.
        checkpoint_every, eval_every: steps between state saves / dev-loss evaluations.
        dev_utts: dev utterances for the dev loss.
        seed: data order, initialization and augmentation draws.
        threads: torch intra-op threads.
        augment: feature augmentation (``models.train.augment.AugmentConfig.parse`` spec:
            ``none``, ``default`` or ``name=value,...``), drawn afresh for every step.
        dropout: dropout on every encoder layer's output during training.
    """

    max_steps: int = 3000
    time_budget_s: float = 2700.0
    max_frames: int = 6000
    max_batch: int = 32
    lr: float = 1.5e-3
    warmup_steps: int = 200
    clip_norm: float = 5.0
    checkpoint_every: int = 50
    eval_every: int = 100
    dev_utts: int = 64
    seed: int = 0
    threads: int = 1
    augment: str = "none"
    dropout: float = 0.0


def _dev_loss(rnnt, cfg: ModelConfig, dev: list, norm: FeatureNorm) -> float:
    rnnt.eval()
    total, labels = 0.0, 0
    with torch.no_grad():
        for feats, ys in dev:
            b = collate(cfg, rnnt.encoder, feats, ys, norm)
            logp = rnnt(b.feats, b.labels, fused=True)
            total += float(rnnt_loss(logp, b.labels, b.T_out, b.U_len, reduction="sum"))
            labels += int(b.U_len.sum())
    rnnt.train()
    return total / max(1, labels)


def train_rnnt(rnnt, cfg: ModelConfig, train: dict, dev: dict, state_path: str | Path,
               tc: RNNTTrainConfig = RNNTTrainConfig(), progress: bool = True,
               steps_this_run: int | None = None, threads_now=None) -> dict:
    """Train ``rnnt`` in place, resuming from ``state_path`` when it exists.

    Args:
        rnnt: ``models.rnnt.RNNT`` (initialized).
        cfg: its ``ModelConfig``.
        train, dev: feature caches (``models.data.features.load_features``).
        state_path: training state file (written atomically every ``checkpoint_every`` steps).
        tc: settings.
        steps_this_run: stop (checkpointed, not done) after this many steps of this call, e.g.
            to time-slice a run; None = run to the end.
        threads_now: called before every step, returns the intra-op thread count to use (e.g.
            1 while another job shares the machine, ``tc.threads`` after); None = ``tc.threads``.

    Returns:
        The final state dict: ``model``, ``norm``, ``step``, ``elapsed_s``, ``history`` (rows of
        step, loss per label in nats, lr, elapsed_s), ``dev_history`` (step, dev loss per label),
        ``done`` (True once ``max_steps`` or the time budget is reached), ``stop_reason``.
    """
    torch.set_num_threads(tc.threads)
    state = load_state(state_path)
    if state is not None and state.get("done"):
        rnnt.load_state_dict(state["model"])
        return state
    aug = AugmentConfig.parse(tc.augment)
    if aug is not None and cfg.features.input_dim == 120:
        raise ValueError(f"RNNTTrainConfig.augment={tc.augment!r}: the frequency warp needs plain log-mel "
                         "features, not the 120-column log-mel + deltas front end")
    labels = [labels_of(cfg, t) for t in train["texts"]]
    feats = train["feats"]
    batches = make_acoustic_batches(cfg, feats, train["texts"], tc.max_frames, tc.max_batch)
    n_dev = min(tc.dev_utts, len(dev["feats"]))
    dev_sorted = sorted(range(n_dev), key=lambda i: dev["feats"][i].shape[0])
    dev_set = [([dev["feats"][i] for i in dev_sorted[k:k + 16]],
                [labels_of(cfg, dev["texts"][i]) for i in dev_sorted[k:k + 16]]) for k in range(0, n_dev, 16)]
    rnnt.train()
    rnnt.encoder.dropout = tc.dropout
    set_fused(rnnt, True)
    opt = torch.optim.Adam(rnnt.parameters(), lr=tc.lr)
    if state is None:
        norm = FeatureNorm.estimate(feats, seed=tc.seed)
        state = {"step": 0, "elapsed_s": 0.0, "history": [], "dev_history": [], "done": False,
                 "norm": norm.state(), "config": asdict(tc), "batches_per_epoch": len(batches)}
    else:
        rnnt.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if state["config"] != asdict(tc):  # e.g. a budget raised on resumption: keep both on record
            state.setdefault("config_history", []).append((state["step"], state["config"]))
            state["config"] = asdict(tc)
        norm = FeatureNorm(state["norm"]["mean"], state["norm"]["std"])
    sched = Schedule(tc.lr, tc.max_steps, tc.warmup_steps)
    clock = Clock(state["elapsed_s"])
    step = state["step"]
    stop_at = None if steps_this_run is None else step + steps_this_run

    def save(at: int, done: bool, reason: str = "") -> None:
        state.update(model=rnnt.state_dict(), optimizer=opt.state_dict(), step=at,
                     elapsed_s=clock.elapsed_s, done=done, stop_reason=reason)
        save_atomic(state, state_path)

    def loss_at(at: int):
        epoch, pos = divmod(at, len(batches))
        idx = epoch_batches(batches, tc.seed, epoch)[pos]
        threads = tc.threads if threads_now is None else threads_now()
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        xs = [feats[i] for i in idx]
        torch.manual_seed(tc.seed * 1_000_003 + at)  # dropout masks: a function of the step (resumable)
        if aug is not None:
            rng = np.random.default_rng([tc.seed, 1, at])  # likewise the augmentation draws
            xs = [augment(x, rng, aug, norm.mean) for x in xs]
        b = collate(cfg, rnnt.encoder, xs, [labels[i] for i in idx], norm)
        logp = rnnt(b.feats, b.labels)
        return rnnt_loss(logp, b.labels, b.T_out, b.U_len, reduction="mean_label")

    def after_eval(at: int, loss: float, dev_loss: float, elapsed_s: float) -> None:
        log.info("step %d: train %.3f dev %.3f nats/label, %.0f s", at, loss, dev_loss, elapsed_s)

    step, reason = run_steps(
        state, opt, rnnt.parameters(), sched, clock, max_steps=tc.max_steps, time_budget_s=tc.time_budget_s,
        clip_norm=tc.clip_norm, eval_every=tc.eval_every, checkpoint_every=tc.checkpoint_every,
        stop_at=stop_at, loss_at=loss_at, dev_metric=lambda: _dev_loss(rnnt, cfg, dev_set, norm), save=save,
        desc="train rnnt", progress=progress, skip_nonfinite=True, eval_at_max=True,
        postfix=lambda at: {"epoch": at // len(batches)}, after_eval=after_eval)
    if reason is None:
        return state
    save(step, True, reason)
    return state


def finalize(rnnt, state: dict) -> None:
    """Load the trained weights and fold the feature normalization into the first layer."""
    rnnt.load_state_dict(state["model"])
    rnnt.encoder.dropout = 0.0
    fold_norm_into_encoder(rnnt, FeatureNorm(state["norm"]["mean"], state["norm"]["std"]))
    set_fused(rnnt, False)
    rnnt.eval()


__all__ = ["RNNTTrainConfig", "train_rnnt", "finalize"]
