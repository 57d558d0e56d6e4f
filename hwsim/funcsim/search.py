"""Beam search over the integer networks, reusing ``models.search`` unchanged.

``models.search.StepScorer`` reaches the networks only through ``system.rnnt.prediction``,
``system.rnnt.joint`` (``enc_proj``, ``pred_proj``, ``__call__(..., projected=True)``),
``system.lm_ext`` / ``system.lm_src`` and ``system.config``. :class:`SearchAdapter` provides those
names over an :class:`~hwsim.funcsim.system.IntSystem`: torch tensors at the boundary (the search
keeps its scores, caches and ``topk`` / ``logaddexp`` in torch), numpy + integer kernels inside.
Recurrent state rows travel through the prefix caches as they are on the hardware: hidden state
as int8 codes, cell state as float32 holding fp16 values. So greedy, ALSD and TSD searches, the
prefix caching, batching and density-ratio fusion are the same code as the torch model's decode.
"""

from __future__ import annotations

import numpy as np
import torch

from hwsim.funcsim.system import Codes, IntCharLM, IntSystem
from models.search import SEARCHES, DecodeResult, SearchConfig, SearchStats, StepScorer, search_config


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.numpy())


def _state_np(state) -> tuple[np.ndarray, ...]:
    return tuple(_np(s) for s in state)


def _state_t(state) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(s) for s in state)


class _Proj:
    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, x):
        return torch.from_numpy(self.fn(x))


class _Joint:
    def __init__(self, sim: IntSystem) -> None:
        self.sim = sim
        self.enc_proj = _Proj(sim.joint.project_enc)  # takes the encoder's Codes
        self.pred_proj = _Proj(lambda h: sim.joint.project_pred(_np(h), sim.prediction.q_out))

    def __call__(self, enc_rows: torch.Tensor, pred_rows: torch.Tensor, projected: bool = False):
        if not projected:
            raise ValueError("the integer joint is only called on cached projections")
        return torch.from_numpy(self.sim.joint(_np(enc_rows), _np(pred_rows)))


class _Prediction:
    def __init__(self, sim: IntSystem) -> None:
        self.stack = sim.prediction

    def initial_state(self, batch: int):
        return _state_t(self.stack.initial_state(batch))

    def __call__(self, labels: torch.Tensor, state):
        h, new = self.stack(_np(labels), _state_np(state))
        return torch.from_numpy(h), _state_t(new)


class _LM:
    def __init__(self, lm: IntCharLM) -> None:
        self.lm = lm

    def initial_state(self, batch: int):
        return _state_t(self.lm.initial_state(batch))

    def __call__(self, labels: torch.Tensor, state):
        logp, new = self.lm(_np(labels), _state_np(state))
        return torch.from_numpy(logp), _state_t(new)


class _RNNT:
    def __init__(self, sim: IntSystem) -> None:
        self.prediction = _Prediction(sim)
        self.joint = _Joint(sim)


class SearchAdapter:
    """The ``system`` object ``models.search`` expects, backed by integer networks."""

    def __init__(self, sim: IntSystem) -> None:
        self.sim = sim
        self.config = sim.config
        self.rnnt = _RNNT(sim)
        self.lm_ext = _LM(sim.lm_ext)
        self.lm_src = _LM(sim.lm_src)


def decode(sim: IntSystem, features, beam: int = 4, method: str = "alsd", lm_fusion: str = "none",
           config: SearchConfig | None = None, **search_kw) -> DecodeResult:
    """Decode one utterance on the integer networks (same signature as ``models.decode``).

    Args:
        sim: the integer system.
        features: (T, input_dim) float features (numpy or torch).
        beam, method, lm_fusion, search_kw: see ``models.search.search_config``.
        config: a complete ``SearchConfig`` (overrides the keywords).

    Returns:
        ``models.search.DecodeResult``: n-best (labels, score), best first, and search statistics.
    """
    adapter = SearchAdapter(sim)
    cfg = config or search_config(adapter, beam, method, lm_fusion, **search_kw)
    feats = np.asarray(features.numpy() if torch.is_tensor(features) else features, np.float32)
    expected = sim.config.features.input_dim
    if feats.ndim != 2 or feats.shape[1] != expected:
        raise ValueError(f"features must be (T, {expected}), got {feats.shape}")
    with torch.inference_mode():
        enc: Codes = sim.encoder(feats)
        stats = SearchStats(cfg.method, 1 if cfg.method == "greedy" else cfg.beam, cfg.lm_fusion,
                            frames=int(enc.codes.shape[0]))
        scorer = StepScorer(adapter, enc, cfg)
        hyps = SEARCHES[cfg.method](scorer, stats.frames, cfg, stats)
    out = [(h.prefix, float(h.score)) for h in hyps]
    stats.labels = len(out[0][0]) if out else 0
    return DecodeResult(out, stats, cfg, sim.config.alphabet)
