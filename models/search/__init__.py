"""RNN-T search with density-ratio LM fusion: greedy, ALSD, TSD; statistics for the cost model.

See ``scoring`` (caches, per-step op sequence, fusion), ``algorithms`` (the searches and their
step numbering), ``stats`` (``SearchStats``) and ``entry`` (``decode``, the entry point).

``models.search.stats`` needs no torch (the analytic graph builder and the cost model read
search statistics without running a model); the other names load torch on first use.
"""

from __future__ import annotations

import importlib

from models.search.stats import SearchStats, StepStats

_LAZY = {
    **dict.fromkeys(("SEARCHES", "alsd_search", "greedy_search", "tsd_search"), "models.search.algorithms"),
    **dict.fromkeys(("DecodeResult", "decode", "search_config"), "models.search.entry"),
    **dict.fromkeys(("FUSIONS", "METHODS", "Hyp", "PrefixCache", "SearchConfig", "StepScorer",
                     "fuse_scores", "merge_hypotheses"), "models.search.scoring"),
}

__all__ = ["SearchStats", "StepStats", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'models.search' has no attribute {name!r}")
