"""Streaming latency: when each chunk's search is done, measured from when its audio arrived.

A streaming graph (``workloads.streaming``) is simulated like any other (``hwsim.simulate``),
with each chunk's ops released at the chunk's arrival. From the schedule, per chunk
(``CHUNK_COLUMNS``):

- ``arrival_s``: when the chunk's last input frame has arrived (from the start of the audio);
- ``start_s``, ``finish_s``: first start and last end among its ops (its encoder frames and the
  search steps it releases: when ``finish_s`` is reached, the words of its frames are out);
- ``queue_s`` = start - arrival (waiting for the chip), ``delay_s`` = finish - arrival (the
  compute delay after the chunk's arrival; never negative, as no op starts before its release).

Per utterance (``summary["streaming"]``): ``chunks``, ``chunk_s``, ``delay_s`` and ``queue_s``
(``mean``, ``p50``, ``p95``, ``max``; percentiles by linear interpolation), ``final_latency_s``
(end of the last op, the final result, minus the end of the audio), ``drift_s_per_s`` (the
least-squares slope of the delay against the arrival over the second half of the chunks) and
``keeps_up``: ``drift_s_per_s <= KEEP_UP_DRIFT``. A decoder that keeps up has a bounded delay
(slope about 0); one that does not falls behind at (load - 1) seconds per second of audio. With
fewer than ``MIN_DRIFT_CHUNKS`` chunks the drift is not measured (None, and ``keeps_up`` is
whether the final latency is below the audio length). ``waiting_s``: the part of the makespan
the chip spends idle waiting for audio (``hwsim.schedule.phase_latency``); the phases share the
rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Columns of ``SimResult.chunks``.
CHUNK_COLUMNS = ("chunk", "arrival_s", "start_s", "finish_s", "queue_s", "delay_s", "ops")

#: Largest delay growth (seconds of delay per second of audio) that still counts as keeping up
#: [our threshold: 1%, i.e. 0.6 s more delay after a minute].
KEEP_UP_DRIFT = 0.01

#: Fewest chunks over which the drift is measured.
MIN_DRIFT_CHUNKS = 8


def chunk_table(start: np.ndarray, end: np.ndarray, first_op: np.ndarray, arrival_s: np.ndarray) -> pd.DataFrame:
    """Per chunk (``CHUNK_COLUMNS``) from the ops' start and end times; chunk ``c``'s ops are
    ``first_op[c]`` up to the next chunk's first op (the last: to the end)."""
    n = len(start)
    first_op = np.asarray(first_op, dtype=np.int64)
    bounds = np.append(first_op, n)
    ops = np.diff(bounds)
    nonempty = ops > 0
    s = np.full(len(first_op), np.nan)
    f = np.full(len(first_op), np.nan)
    idx = first_op[nonempty]
    if len(idx):
        s[nonempty] = np.minimum.reduceat(start, idx)
        f[nonempty] = np.maximum.reduceat(end, idx)
    arrival = np.asarray(arrival_s, dtype=np.float64)
    return pd.DataFrame({"chunk": np.arange(len(first_op)), "arrival_s": arrival, "start_s": s, "finish_s": f,
                         "queue_s": s - arrival, "delay_s": f - arrival, "ops": ops}, columns=list(CHUNK_COLUMNS))


def distribution(values: np.ndarray) -> dict:
    """``mean``, ``p50``, ``p95``, ``max`` of ``values`` (NaN dropped)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": None, "p50": None, "p95": None, "max": None}
    return {"mean": float(v.mean()), "p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)),
            "max": float(v.max())}


def drift(arrival_s: np.ndarray, delay_s: np.ndarray):
    """Least-squares slope of ``delay_s`` against ``arrival_s`` over the second half of the
    chunks (None below ``MIN_DRIFT_CHUNKS`` chunks). ``delay_s`` of shape (streams, chunks)
    gives one slope per stream (an array)."""
    a = np.asarray(arrival_s, dtype=np.float64)
    d = np.asarray(delay_s, dtype=np.float64)
    rows = d.ndim == 2
    d = np.atleast_2d(d)
    ok = np.isfinite(d).all(axis=0)
    a, d = a[ok], d[:, ok]
    if len(a) < MIN_DRIFT_CHUNKS:
        return None
    a, d = a[len(a) // 2:], d[:, len(a) // 2:]
    x = a - a.mean()
    denom = float(x @ x)
    slope = (d - d.mean(axis=1, keepdims=True)) @ x / denom if denom > 0 else np.zeros(len(d))
    return slope if rows else float(slope[0])


def summary(chunks: pd.DataFrame, chunk_s: float, makespan_s: float, audio_s: float) -> dict:
    """``summary["streaming"]`` of a streaming run (module docstring)."""
    end_of_audio = float(chunks["arrival_s"].iloc[-1]) if len(chunks) else audio_s
    final = float(makespan_s - end_of_audio)
    slope = drift(chunks["arrival_s"], chunks["delay_s"])
    return {"chunks": int(len(chunks)), "chunk_s": float(chunk_s), "delay_s": distribution(chunks["delay_s"]),
            "queue_s": distribution(chunks["queue_s"]), "final_latency_s": final, "drift_s_per_s": slope,
            "keeps_up": bool(final < audio_s) if slope is None else bool(slope <= KEEP_UP_DRIFT)}


def simulate_streaming(config, hw, policy, audio_s: float, beam: int, lm_fusion: str, method: str = "alsd",
                       chunk_ms: float | None = None, stats=None):
    """Simulate ``audio_s`` seconds of audio streamed in chunks of ``chunk_ms`` (default: one
    encoder output frame, ``workloads.streaming``) through ``config`` on ``hw`` under ``policy``.

    Args:
        config: a ``ModelConfig`` with a unidirectional encoder (or its name / path).
        hw, policy: as ``hwsim.simulate``.
        stats: the decode's ``SearchStats`` (e.g. of a traced graph: ``stats_of_graph``);
            default ``workloads.stats.parametric_stats``.

    Returns:
        ``SimResult`` with ``summary["streaming"]`` and ``SimResult.chunks``.
    """
    from models.config import ModelConfig, load_config
    from workloads.stats import input_frames
    from workloads.streaming import chunk_frames_of, paper_streaming_graph, streaming_graph

    from hwsim.simulate import simulate

    if not isinstance(config, ModelConfig):
        config = load_config(config)
    if stats is None:
        graph = paper_streaming_graph(config, audio_s, beam, lm_fusion, method=method, chunk_ms=chunk_ms)
    else:
        graph = streaming_graph(config, stats, input_frames(config, audio_s), chunk_frames_of(config, chunk_ms))
    return simulate(graph, hw, policy, audio_s, config=config)


def stats_of_graph(meta: dict, where: str = "the graph"):
    """The ``SearchStats`` a traced graph keeps (``meta["search_stats"]``, ``workloads.trace``).

    Raises:
        UserError: the graph has none (traced before they were kept, or analytic).
    """
    from models.search.stats import SearchStats
    from models.yamlio import UserError

    data = meta.get("search_stats")
    if not data:
        raise UserError(f"{where}: its metadata has no per-step search statistics (search_stats); "
                        "trace it again with this version of hwsim trace to stream it")
    return SearchStats.from_dict(data)


def write(chunks: pd.DataFrame, out: Path) -> None:
    """``chunks.csv`` in a run folder."""
    chunks.to_csv(Path(out) / "chunks.csv", index=False)
