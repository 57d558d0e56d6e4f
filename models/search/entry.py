"""``decode``: features -> encoder -> search, with statistics."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from models.search.algorithms import SEARCHES
from models.search.scoring import SearchConfig, StepScorer
from models.search.stats import SearchStats


@dataclass
class DecodeResult:
    """Output of ``decode``.

    Attributes:
        hyps: (labels tuple, score) pairs, best first.
        stats: the search statistics.
        search: the settings used.
        alphabet: characters of labels 1.. (for ``text``).
    """

    hyps: list[tuple[tuple[int, ...], float]]
    stats: SearchStats
    search: SearchConfig
    alphabet: str = field(default="", repr=False)

    @property
    def labels(self) -> tuple[int, ...]:
        """Labels of the best hypothesis."""
        return self.hyps[0][0] if self.hyps else ()

    @property
    def text(self) -> str:
        """Text of the best hypothesis ('?' for labels without a character)."""
        return self.to_text(self.labels)

    def to_text(self, labels: tuple[int, ...]) -> str:
        a = self.alphabet
        return "".join(a[y - 1] if 0 < y <= len(a) else "?" for y in labels if y != 0)


def search_config(system, beam: int = 4, method: str = "alsd", lm_fusion: str = "none",
                  lambda_ext: float | None = None, lambda_src: float | None = None,
                  length_reward: float | None = None, max_symbols_per_frame: int | None = None,
                  alsd_max_target_len: int | None = None,
                  alsd_max_symbols_ratio: float | None = None) -> SearchConfig:
    """A ``SearchConfig`` with fusion weights defaulting to ``system.config.fusion``.

    ``max_symbols_per_frame`` sets both the TSD and the greedy limit.
    """
    fusion = system.config.fusion
    cfg = SearchConfig(
        method=method, beam=beam, lm_fusion=lm_fusion,
        lambda_ext=fusion.lambda_ext if lambda_ext is None else float(lambda_ext),
        lambda_src=fusion.lambda_src if lambda_src is None else float(lambda_src),
        length_reward=fusion.length_reward if length_reward is None else float(length_reward),
        alsd_max_target_len=alsd_max_target_len,
    )
    if alsd_max_symbols_ratio is not None:
        cfg = replace(cfg, alsd_max_symbols_ratio=float(alsd_max_symbols_ratio))
    if max_symbols_per_frame is not None:
        cfg = replace(cfg, tsd_max_symbols_per_frame=max_symbols_per_frame,
                      greedy_max_symbols_per_frame=max_symbols_per_frame)
    return cfg


def decode(system, features: Tensor | np.ndarray, beam: int = 4, method: str = "alsd",
           lm_fusion: str = "none", lambda_ext: float | None = None, lambda_src: float | None = None,
           length_reward: float | None = None, max_symbols_per_frame: int | None = None,
           alsd_max_target_len: int | None = None, alsd_max_symbols_ratio: float | None = None,
           config: SearchConfig | None = None) -> DecodeResult:
    """Decode one utterance.

    Args:
        system: ``models.system.System``.
        features: (T, input_dim) at 10 ms frames.
        beam, method, lm_fusion, lambda_ext, lambda_src, length_reward, max_symbols_per_frame,
            alsd_max_target_len, alsd_max_symbols_ratio: see ``SearchConfig`` (fusion weights
            default to ``system.config.fusion``).
        config: a complete ``SearchConfig``; when given, the keyword settings are ignored.

    Returns:
        ``DecodeResult`` (hyps best first, statistics). Runs under ``torch.inference_mode()``:
        the encoder (step scopes per frame), one ``enc_proj`` GEMM, then the search steps.
    """
    cfg = config or search_config(system, beam, method, lm_fusion, lambda_ext, lambda_src,
                                  length_reward, max_symbols_per_frame, alsd_max_target_len,
                                  alsd_max_symbols_ratio)
    feats = torch.as_tensor(features, dtype=torch.float32)
    expected = system.config.features.input_dim
    if feats.dim() != 2 or feats.shape[1] != expected:
        raise ValueError(f"features must be (T, {expected}), got {tuple(feats.shape)}")
    with torch.inference_mode():
        enc = system.rnnt.encoder(feats.unsqueeze(0))[0]  # (T_out, Enc)
        stats = SearchStats(cfg.method, 1 if cfg.method == "greedy" else cfg.beam, cfg.lm_fusion,
                            frames=int(enc.shape[0]))
        scorer = StepScorer(system, enc, cfg)
        hyps = SEARCHES[cfg.method](scorer, stats.frames, cfg, stats)
    out = [(h.prefix, float(h.score)) for h in hyps]
    stats.labels = len(out[0][0]) if out else 0
    return DecodeResult(out, stats, cfg, system.config.alphabet)
