"""RNN-T search with density-ratio LM fusion: greedy, ALSD, TSD; statistics for the cost model.

See ``scoring`` (caches, per-step op sequence, fusion), ``algorithms`` (the searches and their
step numbering), ``stats`` (``SearchStats``) and ``decode`` (the entry point).
"""

from models.search.algorithms import SEARCHES, alsd_search, greedy_search, tsd_search
from models.search.decode import DecodeResult, decode, search_config
from models.search.scoring import (FUSIONS, METHODS, Hyp, PrefixCache, SearchConfig, StepScorer,
                                   fuse_scores, merge_hypotheses)
from models.search.stats import SearchStats, StepStats

__all__ = ["SEARCHES", "alsd_search", "greedy_search", "tsd_search", "DecodeResult", "decode",
           "search_config", "FUSIONS", "METHODS", "Hyp", "PrefixCache", "SearchConfig", "StepScorer",
           "fuse_scores", "merge_hypotheses", "SearchStats", "StepStats"]
