"""Serving capacity: S live streams share one chip; how late are their words, and how many
streams meet a latency target while keeping up.

**Streams.** Every stream decodes the same kind of utterance (``audio_s`` seconds, the search
statistics of ``workloads.stats.parametric_stats`` or given), cut into chunks as
``workloads.streaming`` cuts one; stream ``s`` starts at ``offset_s[s] = frac(s * g) *
chunk_s`` with ``g = (sqrt(5) - 1) / 2`` [assumption: live streams start at unrelated times;
this low-discrepancy sequence spreads them over a chunk period and does not move when streams
are added]. Chunk ``c`` of stream ``s`` arrives at ``offset_s[s] + arrival_s[c]``.

**Batching.** The chip runs one batch at a time [assumption: consecutive batches do not
overlap, which a pipelined schedule could do: capacity is a lower bound in that respect]. When
it is free, it takes the ready streams (those whose next chunk has arrived), oldest chunk first,
up to ``max_batch``; with ``max_wait_s > 0`` and fewer than ``max_batch`` ready, it waits for
more until the oldest ready chunk has waited ``max_wait_s`` (not past the last arrival before
that). A batch holds at most one chunk per stream (a stream's chunks depend on each other).

**Service time** of a batch of ``b`` streams, from the op-level simulator
(``batched_chunk_graph``, planned as a stream: weights preloaded, on chip as the knapsack
allows), from three tables: ``encoder_s[b]`` (the chunk's encoder work for ``b`` streams at
once, every GEMM's rows times ``b``, its weights read once), ``first_s[b]`` (the same followed by
one search step of ``b`` streams' average step, ``workloads.streaming.mean_step``: the search
overlaps the encoder where the dataflow allows) and ``step_s[b]`` (what one more such step
adds). A batch whose members all have a step takes ``first_s[b]``; one where only ``b_1`` of them
do, ``encoder_s[b] + first_s[b_1] - encoder_s[b_1]``; then each step ``j >= 2`` adds
``step_s[b_j]`` for the ``b_j`` members that have a ``j``-th step. The makespans of 0, 1 and 2
steps are first made non-decreasing in ``b`` and in the steps (a smaller batch, or one with fewer
steps, may run the larger program, padded). This is
where batching and precision interact: a weight streamed from DRAM at every use is read once per
batch. Without batching, the model is checked against an op-level simulation of the interleaved
streams (``workloads.streaming.interleave``, ``tests/hwsim/test_serve.py``; the reference
report gives the agreement it measures): the two differ where the op-level schedule overlaps
consecutive chunks of different streams, which the batch model does not, most near the load at
which the chip starts to fall behind.

**Results.** Per stream: the delay of each chunk (finish of its batch - its arrival), its
``p50``/``p95``/``max``, the final latency after its end of speech and whether it keeps up
(``hwsim.streaming.drift`` <= ``KEEP_UP_DRIFT``); per run: the worst stream's p95 (``p95_s``),
the chip's busy share and the mean batch. ``max_streams`` finds the largest ``S`` whose worst
p95 meets a target with every stream keeping up, by doubling then bisection (the worst p95 does
not fall when streams are added with ``max_wait_s = 0``: ``tests/hwsim/test_serve.py``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from hwsim.streaming import KEEP_UP_DRIFT, drift

log = logging.getLogger(__name__)

GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

#: Columns of ``ServeResult.streams``.
STREAM_COLUMNS = ("stream", "offset_s", "delay_mean_s", "delay_p50_s", "delay_p95_s", "delay_max_s",
                  "final_latency_s", "drift_s_per_s", "keeps_up")


@dataclass(frozen=True)
class BatchPolicy:
    """How streams are batched: at most ``max_batch`` per batch; wait at most ``max_wait_s``
    for a fuller batch (0: take what is ready)."""

    max_batch: int = 16
    max_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if not (self.max_wait_s >= 0 and math.isfinite(self.max_wait_s)):
            raise ValueError(f"max_wait_s must be a finite number >= 0, got {self.max_wait_s}")


@dataclass(frozen=True)
class Workload:
    """What every stream decodes and what the chip takes for it (module docstring).

    Attributes:
        arrival_s: per chunk, its arrival from the stream's start. steps: search steps per chunk.
        chunk_s: chunk length. encoder_s, first_s, step_s: service seconds for batches of 1 ..
            ``len - 1`` streams (index 0 unused; module docstring). what: a short description
            for reports.
    """

    arrival_s: np.ndarray
    steps: np.ndarray
    chunk_s: float
    encoder_s: np.ndarray
    first_s: np.ndarray
    step_s: np.ndarray
    what: dict

    @property
    def max_batch(self) -> int:
        return len(self.encoder_s) - 1

    def service_s(self, members_steps: np.ndarray) -> float:
        """Seconds for one batch whose members have ``members_steps`` search steps each."""
        return float(_service(np.asarray(members_steps, dtype=np.int64), self.encoder_s, self.first_s, self.step_s))


def workload(config, hw, policy, audio_s: float, beam: int, lm_fusion: str, method: str = "alsd",
             chunk_ms: float | None = None, max_batch: int = 16, stats=None) -> Workload:
    """The streams' chunks and the chip's service times for batches up to ``max_batch``.

    Raises:
        StreamingError: a bidirectional model; a chunk that is not a whole number of encoder
            output frames (every full chunk must bring the same work).
    """
    from models.config import ModelConfig, load_config
    from models.quant.policy import PrecisionPolicy, load_policy
    from workloads.stats import input_frames, parametric_stats
    from workloads.streaming import (StreamingError, batched_chunk_graph, chunk_frames_of, frames_per_output,
                                     mean_step, plan_chunks, steady_counts, step_chunks)

    from hwsim.simulate import simulate
    from hwsim.spec import load_spec

    if not isinstance(config, ModelConfig):
        config = load_config(config)
    hw = load_spec(hw)
    if not isinstance(policy, PrecisionPolicy):
        policy = load_policy(policy)
    chunk = chunk_frames_of(config, chunk_ms)
    if chunk % frames_per_output(config):
        raise StreamingError(f"serving needs chunks of whole encoder output frames: a multiple of "
                             f"{frames_per_output(config) * config.features.frame_shift_s * 1000:g} ms for model "
                             f"{config.name!r}, got {chunk * config.features.frame_shift_s * 1000:g} ms")
    frames = input_frames(config, audio_s)
    if stats is None:
        stats = parametric_stats(config, audio_s, beam, lm_fusion, method=method)
    plan = plan_chunks(config, frames, chunk)
    steps = np.bincount(step_chunks(plan, stats), minlength=plan.n_chunks).astype(np.int64)
    counts = steady_counts(plan)
    step = mean_step(stats)
    tables = np.zeros((3, max_batch + 1))          # makespan with 0, 1, 2 search steps
    quiet = logging.getLogger("hwsim.simulate")
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))    # the same fallbacks for every batch: said once below
    try:
        for b in range(1, max_batch + 1):
            for k in range(3):
                r = simulate(batched_chunk_graph(config, counts, step, k, stats.beam, lm_fusion, b, plan.chunk_s),
                             hw, policy, plan.chunk_s, config=config)
                tables[k, b] = r.latency_s
            if b == 1:
                fallbacks = r.summary["precision_fallbacks"]
    finally:
        quiet.setLevel(level)
    if fallbacks:
        log.info("precision fallbacks on %s (per batched chunk and step): %s", hw.name, fallbacks)
    # A batch of b streams with k steps may run the program of a larger batch or of more steps,
    # padded: its time is at most that one's (the list schedule and the core allocation are
    # heuristics, and do not always give less work a shorter makespan).
    env = tables.copy()
    env[:, 1:] = np.minimum.accumulate(env[:, 1:][:, ::-1], axis=1)[:, ::-1]
    env = np.minimum.accumulate(env[::-1], axis=0)[::-1]
    enc, first, more = env[0], env[1], env[2] - env[1]
    what = {"model": config.name, "hw": hw.name, "precision": policy.name, "beam": stats.beam,
            "lm_fusion": lm_fusion, "method": stats.method, "audio_s": float(audio_s), "chunk_s": plan.chunk_s,
            "chunks": plan.n_chunks}
    return Workload(plan.arrival_s.astype(np.float64), steps, plan.chunk_s, enc, first, more, what)


@njit(cache=True, nogil=True)
def _service(members_steps, enc, first, step):
    b = len(members_steps)
    k = 0
    b1 = 0
    for m in members_steps:
        if m > k:
            k = m
        if m >= 1:
            b1 += 1
    if b1 == 0:
        out = enc[b]
    elif b1 == b:
        out = first[b]
    else:
        out = enc[b] + max(first[b1] - enc[b1], 0.0)
    for j in range(2, k + 1):
        bj = 0
        for m in members_steps:
            if m >= j:
                bj += 1
        out += step[bj]
    return out


@njit(cache=True, nogil=True, inline="always")
def _less(a, b, key):
    return key[a] < key[b] or (key[a] == key[b] and a < b)


@njit(cache=True, nogil=True)
def _push(heap, n, s, key):
    """Push stream ``s`` onto the min-heap ``heap[:n]`` ordered by (``key``, stream); returns n + 1."""
    q = n
    while q > 0:
        parent = (q - 1) // 2
        if not _less(s, heap[parent], key):
            break
        heap[q] = heap[parent]
        q = parent
    heap[q] = s
    return n + 1


@njit(cache=True, nogil=True)
def _pop(heap, n, key):
    """Pop the least stream of ``heap[:n]``; returns (stream, n - 1)."""
    top = heap[0]
    n -= 1
    last = heap[n]
    q = 0
    while True:
        c = 2 * q + 1
        if c >= n:
            break
        if c + 1 < n and _less(heap[c + 1], heap[c], key):
            c += 1
        if not _less(heap[c], last, key):
            break
        heap[q] = heap[c]
        q = c
    if n > 0:
        heap[q] = last
    return top, n


@njit(cache=True, nogil=True)
def _simulate(offset, arrival, steps, enc, first, step, max_batch, max_wait):
    # Streams in a min-heap keyed by the arrival of their next chunk (ties: the lower stream):
    # the ready ones are those with key <= t, the oldest first.
    S = len(offset)
    C = len(arrival)
    head = np.zeros(S, dtype=np.int64)
    key = offset + arrival[0]
    heap = np.empty(S, dtype=np.int64)
    n = 0
    for s in range(S):
        n = _push(heap, n, s, key)
    finish = np.empty((S, C))
    sizes = np.zeros(max_batch + 1, dtype=np.int64)
    members = np.empty(max_batch, dtype=np.int64)
    member_steps = np.empty(max_batch, dtype=np.int64)
    busy = 0.0
    t = 0.0
    while n > 0:
        if key[heap[0]] > t:
            t = key[heap[0]]              # idle until the next arrival
        b = 0
        while b < max_batch and n > 0 and key[heap[0]] <= t:
            members[b], n = _pop(heap, n, key)
            b += 1
        if b < max_batch and max_wait > 0.0 and n > 0:
            deadline = key[members[0]] + max_wait
            if key[heap[0]] <= deadline:  # one more stream arrives in time: wait for it
                nxt = key[heap[0]]
                for i in range(b):
                    n = _push(heap, n, members[i], key)
                t = nxt
                continue
        for i in range(b):
            member_steps[i] = steps[head[members[i]]]
        dur = _service(member_steps[:b], enc, first, step)
        end = t + dur
        for i in range(b):
            s = members[i]
            finish[s, head[s]] = end
            head[s] += 1
            if head[s] < C:
                key[s] = offset[s] + arrival[head[s]]
                n = _push(heap, n, s, key)
        sizes[b] += 1
        busy += dur
        t = end
    return finish, sizes, busy


def offsets(streams: int, chunk_s: float) -> np.ndarray:
    """Start of each stream (module docstring): ``frac(s * g) * chunk_s``."""
    s = np.arange(streams, dtype=np.float64)
    return np.mod(s * GOLDEN, 1.0) * chunk_s


@dataclass
class ServeResult:
    """``serve``'s result: ``summary`` (scalars), ``streams`` (``STREAM_COLUMNS``, one row per
    stream), ``delay_s`` (streams x chunks), the workload and the policy."""

    summary: dict
    streams: pd.DataFrame
    delay_s: np.ndarray
    workload: Workload
    batching: BatchPolicy


def serve(work: Workload, streams: int, batching: BatchPolicy | None = None) -> ServeResult:
    """Simulate ``streams`` live streams of ``work`` sharing the chip (module docstring);
    ``batching`` default: batches up to the largest the workload has service times for.

    Returns:
        ``ServeResult``; ``summary`` has ``streams``, ``p95_s`` (worst stream's p95 delay),
        ``p95_median_s`` (median over streams), ``delay_max_s``, ``final_latency_max_s``,
        ``keeps_up`` (every stream), ``busy`` (chip busy time / audio span), ``mean_batch``,
        ``batches``, ``max_batch``, ``max_wait_s``, and the workload's ``what``.
    """
    if streams < 1:
        raise ValueError(f"streams must be >= 1, got {streams}")
    batching = batching or BatchPolicy(max_batch=work.max_batch)
    if batching.max_batch > work.max_batch:
        raise ValueError(f"max_batch {batching.max_batch} > the {work.max_batch} batch sizes the workload "
                         "has service times for")
    off = offsets(streams, work.chunk_s)
    finish, sizes, busy = _simulate(off, work.arrival_s, work.steps, work.encoder_s, work.first_s, work.step_s,
                                    int(batching.max_batch), float(batching.max_wait_s))
    arrive = off[:, None] + work.arrival_s[None, :]
    delay = finish - arrive
    slope = drift(work.arrival_s, delay)
    final = delay[:, -1]
    keeps = final < work.what["audio_s"] if slope is None else slope <= KEEP_UP_DRIFT
    table = pd.DataFrame({"stream": np.arange(streams), "offset_s": off, "delay_mean_s": delay.mean(axis=1),
                          "delay_p50_s": np.percentile(delay, 50, axis=1),
                          "delay_p95_s": np.percentile(delay, 95, axis=1), "delay_max_s": delay.max(axis=1),
                          "final_latency_s": final,
                          "drift_s_per_s": np.full(streams, np.nan) if slope is None else slope,
                          "keeps_up": keeps}, columns=list(STREAM_COLUMNS))
    n_batches = int(sizes.sum())
    span = float(finish.max() - off.min()) if finish.size else 0.0
    summary = {**work.what, "streams": int(streams), "max_batch": int(batching.max_batch),
               "max_wait_s": float(batching.max_wait_s),
               "p95_s": float(table["delay_p95_s"].max()), "p95_median_s": float(table["delay_p95_s"].median()),
               "delay_max_s": float(table["delay_max_s"].max()),
               "final_latency_max_s": float(table["final_latency_s"].max()),
               "keeps_up": bool(table["keeps_up"].all()), "busy": busy / span if span > 0 else 0.0,
               "batches": n_batches, "mean_batch": float(streams * len(work.arrival_s) / n_batches) if n_batches else 0.0,
               "service_s": {f"{name}_b{b}": float(getattr(work, f"{name}_s")[b])
                             for b in dict.fromkeys((1, work.max_batch)) for name in ("encoder", "first", "step")}}
    return ServeResult(summary, table, delay, work, batching)


def stream_monotonicity(work: Workload, streams: int, batching: BatchPolicy | None = None) -> dict:
    """How far the delays are from monotone in the number of streams, over S = 1 .. ``streams``:
    ``steps`` (S -> S + 1), ``fell`` (steps where some stream's p95 fell) and ``worst_drop``
    (the largest relative fall of the worst stream's p95; 0 if it never fell)."""
    steps = fell = 0
    worst_drop = 0.0
    prev = None
    for s in range(1, streams + 1):
        p95 = serve(work, s, batching).streams["delay_p95_s"].to_numpy()
        if prev is not None:
            steps += 1
            fell += bool((p95[:-1] < prev - 1e-12).any())
            worst_drop = max(worst_drop, 1.0 - p95.max() / prev.max())
        prev = p95
    return {"steps": steps, "fell": fell, "worst_drop": worst_drop}


def meets(result: ServeResult, p95_s: float) -> bool:
    """Every stream keeps up and the worst stream's p95 delay is at most ``p95_s``."""
    return result.summary["keeps_up"] and result.summary["p95_s"] <= p95_s


def max_streams(work: Workload, p95_s: float, batching: BatchPolicy | None = None,
                limit: int = 64) -> tuple[int, dict[int, ServeResult]]:
    """The largest number of streams, at most ``limit``, that ``meets`` the target: doubling
    from 1, then bisection between the last that met it and the first that did not.

    Returns:
        (streams, {streams tried: result}); 0 when even one stream misses the target.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    tried: dict[int, ServeResult] = {}

    def ok(s: int) -> bool:
        tried[s] = serve(work, s, batching)
        return meets(tried[s], p95_s)

    if not ok(1):
        return 0, tried
    lo, hi = 1, None
    s = 1
    while hi is None:
        s = min(2 * s, limit)
        if ok(s):
            lo = s
            if s == limit:
                return lo, tried
        else:
            hi = s
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo, tried
