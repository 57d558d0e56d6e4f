"""Per-split feature caches: ``feats/<split>.pt`` = {"ids", "texts", "feats": [float16 (T, D)]}.

Features are ``models.features.features_for(config, wave)`` of each manifest WAV (80-dim log-mel
for ``small``), stored as float16 to halve memory; the cache records the feature config so a
cache made for another front end is rebuilt, not reused.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from pathlib import Path

import torch
from tqdm import tqdm

from models.config import ModelConfig
from models.data.corpus import SPLITS, read_manifest
from models.features import features_for, load_wav

log = logging.getLogger(__name__)


def _one(args: tuple[str, ModelConfig]) -> torch.Tensor:
    path, cfg = args
    torch.set_num_threads(1)
    wave, sr = load_wav(path)
    return features_for(cfg, wave, sr).to(torch.float16)


def cache_path(root: str | Path, split: str) -> Path:
    return Path(root) / "feats" / f"{split}.pt"


def _feature_key(cfg: ModelConfig) -> dict:
    f = cfg.features
    return {"input_dim": f.input_dim, "frame_shift_s": f.frame_shift_s}


def build_features(root: str | Path, cfg: ModelConfig, splits: tuple[str, ...] = SPLITS, jobs: int = 2,
                   progress: bool = True) -> None:
    """Compute (or keep, when complete and made for the same front end) every split's cache."""
    root = Path(root)
    (root / "feats").mkdir(parents=True, exist_ok=True)
    for split in splits:
        rows = read_manifest(root, split)
        out = cache_path(root, split)
        if out.exists():
            old = torch.load(out, weights_only=True)
            if old.get("key") == _feature_key(cfg) and old["ids"] == [r["id"] for r in rows]:
                continue
        paths = [(str(root / "wav" / split / f"{r['id']}.wav"), cfg) for r in rows]
        with mp.get_context("fork").Pool(max(1, jobs)) as pool:
            feats = list(tqdm(pool.imap(_one, paths, chunksize=16), total=len(paths),
                              desc=f"features {split}", unit="utt", disable=not progress))
        tmp = out.with_suffix(".tmp")
        torch.save({"key": _feature_key(cfg), "ids": [r["id"] for r in rows],
                    "texts": [r["text"] for r in rows], "voices": [r["voice"] for r in rows],
                    "heldout_voice": [int(r["heldout_voice"]) for r in rows], "feats": feats}, tmp)
        os.replace(tmp, out)
        log.info("features %s: %d utterances", split, len(feats))


def load_features(root: str | Path, split: str) -> dict:
    """The cache dict of one split (``feats`` as float16 tensors)."""
    return torch.load(cache_path(root, split), weights_only=True)


def features_complete(root: str | Path, splits: tuple[str, ...] = SPLITS) -> bool:
    return all(cache_path(root, s).exists() for s in splits)


__all__ = ["build_features", "load_features", "cache_path", "features_complete"]
