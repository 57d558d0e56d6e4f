"""Streaming decode graphs: the audio arrives in real time and is decoded chunk by chunk.

A unidirectional encoder can run while the audio arrives. The audio is cut into chunks of
``chunk_frames`` feature frames (10 ms each); when a chunk has arrived, the encoder runs on its
frames (``GraphBuilder.encoder_chunk``: every layer's new frames, from the state the chunk before
left, then ``joint.enc_proj`` of the new output frames), and then every search step whose latest
encoder frame (``StepStats.frame``; for ALSD the latest frame among its hyps) is now there.
Steps that need a later frame wait for a later chunk; after the last chunk the remaining steps
and the read-back of the results run.

Which frames a chunk brings, per layer, follows from the front end exactly: after the first
``n`` input frames, ``stacked_frames(n)`` stacked frames exist, and after the reducing layer
``reduced_frames`` of those (``models.config``). The default chunk is the input frames of one
encoder output frame (``stride x time_reduction`` frames: 40 ms for ``swb300-stream``), the
finest chunking the encoder's time reduction allows.

The graph is an ordinary ``OpGraph`` in program order chunk by chunk, with ``meta["streaming"]``:
``chunk_frames``, ``chunk_s``, ``arrival_s`` (when each chunk's last frame has arrived, seconds
from the start of the audio) and ``first_op`` (id of each chunk's first op; a chunk's ops run
from it to the next chunk's first op). The simulator releases each op at its chunk's arrival
(``hwsim.streaming``). A single chunk (the whole utterance at once) is exactly the offline graph
(``workloads.rnnt.rnnt_graph``), released at the end of the audio.

The ops of a chunk's encoder carry the chunk index as their ``step``; the search steps keep
their step index. A bidirectional encoder needs the whole utterance before its backward
direction can start: it is rejected (``StreamingError``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models.config import ModelConfig, reduced_frames, stacked_frames
from models.yamlio import UserError
from workloads.graph import OpGraph
from workloads.rnnt import GraphBuilder, SearchEmitter, check_stats_frames, graph_meta, rnnt_graph


class StreamingError(UserError):
    """A model or chunking that cannot be streamed (the message says why)."""


def frames_per_output(config: ModelConfig) -> int:
    """Input feature frames per encoder output frame (``stride x time_reduction``): the
    default chunk."""
    return config.features.stride * max(config.encoder.time_reduction, 1)


@dataclass(frozen=True)
class ChunkPlan:
    """How a streamed utterance is cut (see the module docstring).

    Attributes:
        chunk_frames: input feature frames per chunk (the last chunk may be shorter).
        frame_shift_s: seconds per input frame.
        counts: (chunks, encoder layers + 1) new frames per layer in each chunk, then new
            encoder output frames.
        arrival_s: per chunk, when its last input frame has arrived.
        frames_ready: per chunk, encoder output frames available after it (cumulative).
    """

    chunk_frames: int
    frame_shift_s: float
    counts: np.ndarray
    arrival_s: np.ndarray
    frames_ready: np.ndarray

    @property
    def n_chunks(self) -> int:
        return len(self.arrival_s)

    @property
    def chunk_s(self) -> float:
        return self.chunk_frames * self.frame_shift_s


def chunk_frames_of(config: ModelConfig, chunk_ms: float | None) -> int:
    """Input frames per chunk for ``chunk_ms`` milliseconds (None: ``frames_per_output``).

    Raises:
        StreamingError: a bidirectional encoder; ``chunk_ms`` not a positive multiple of the
            frame shift.
    """
    if config.encoder.bidirectional:
        raise StreamingError(
            f"model {config.name!r} has a bidirectional encoder: its backward direction needs the "
            "whole utterance, so it cannot be streamed; use a unidirectional model (e.g. "
            "swb300-stream) or simulate offline")
    if chunk_ms is None:
        return frames_per_output(config)
    shift_ms = config.features.frame_shift_s * 1000.0
    n = chunk_ms / shift_ms
    if not chunk_ms > 0 or abs(n - round(n)) > 1e-6 or round(n) < 1:
        raise StreamingError(f"--chunk-ms must be a positive multiple of the {shift_ms:g} ms frame shift "
                             f"of model {config.name!r}, got {chunk_ms:g}")
    return int(round(n))


def plan_chunks(config: ModelConfig, frames: int, chunk_frames: int) -> ChunkPlan:
    """The chunks of ``frames`` input frames, ``chunk_frames`` each (see ``ChunkPlan``).

    Raises:
        StreamingError: a ``mean`` time reduction whose groups would straddle chunks (choose a
            chunk of a multiple of ``frames_per_output`` frames).
    """
    f, enc = config.features, config.encoder
    layers = enc.layers
    r = enc.time_reduction
    after = enc.time_reduction_after if r > 1 else layers
    n_chunks = -(-frames // chunk_frames)
    ends = np.minimum(np.arange(1, n_chunks + 1, dtype=np.int64) * chunk_frames, frames)
    cum = np.zeros((n_chunks, layers + 1), dtype=np.int64)
    for c, n_in in enumerate(ends):
        S = stacked_frames(int(n_in), f.stack, f.stride) if n_in >= f.stack else 0
        R = reduced_frames(S, r, enc.time_reduction_method) if r > 1 else S
        if (r > 1 and enc.time_reduction_method == "mean" and c < n_chunks - 1 and S % r):
            raise StreamingError(
                f"a chunk of {chunk_frames} frames ends inside a mean time-reduction group of model "
                f"{config.name!r}: use a multiple of {frames_per_output(config)} frames "
                f"({frames_per_output(config) * f.frame_shift_s * 1000:g} ms)")
        cum[c, :after] = S
        cum[c, after:layers] = R
        cum[c, layers] = R
    counts = np.diff(np.vstack([np.zeros((1, layers + 1), dtype=np.int64), cum]), axis=0)
    return ChunkPlan(chunk_frames, f.frame_shift_s, counts, ends * f.frame_shift_s, cum[:, layers].copy())


def step_chunks(plan: ChunkPlan, stats) -> np.ndarray:
    """The chunk after which each search step runs: the first chunk after which its latest
    frame (``StepStats.frame``) is there, and never before the step before it (steps run in
    order); steps left after the last chunk run after it."""
    frame = np.array([s.frame for s in stats.steps], dtype=np.int64)
    chunk = np.searchsorted(plan.frames_ready, frame, side="right")
    return np.minimum(np.maximum.accumulate(chunk) if len(chunk) else chunk, plan.n_chunks - 1)


def streaming_graph(config: ModelConfig, stats, frames: int, chunk_frames: int | None = None, *,
                    tsd_max_symbols_per_frame: int = 3, greedy_max_symbols_per_frame: int = 5) -> OpGraph:
    """The decode's op graph when its audio arrives in chunks (module docstring).

    Args:
        config: a model with a unidirectional encoder.
        stats: ``SearchStats`` of the decode (a real one, e.g. a traced graph's
            ``meta["search_stats"]``, or ``workloads.stats.parametric_stats``).
        frames: input feature frames. chunk_frames: input frames per chunk (default
            ``frames_per_output``).
        tsd_max_symbols_per_frame, greedy_max_symbols_per_frame: as ``rnnt_graph``.

    Raises:
        StreamingError: a bidirectional encoder. ValueError: statistics of another length.
    """
    if chunk_frames is None:
        chunk_frames = chunk_frames_of(config, None)
    else:
        chunk_frames_of(config, chunk_frames * config.features.frame_shift_s * 1000.0)
    plan = plan_chunks(config, frames, chunk_frames)
    T = int(plan.frames_ready[-1])
    check_stats_frames(config, stats, frames, T)
    meta_stream = {"chunk_frames": chunk_frames, "chunk_s": plan.chunk_s,
                   "arrival_s": [float(a) for a in plan.arrival_s]}
    if plan.n_chunks == 1:
        g = rnnt_graph(config, stats, frames, tsd_max_symbols_per_frame=tsd_max_symbols_per_frame,
                       greedy_max_symbols_per_frame=greedy_max_symbols_per_frame)
        g.meta["streaming"] = {**meta_stream, "first_op": [0]}
        return g

    b = GraphBuilder(config)
    b.enc_state = [None] * (2 * config.encoder.layers)
    b.scorer_init(T, None, stats.lm_fusion == "dr", project=False)
    search = SearchEmitter(b, stats, tsd_max_symbols_per_frame, greedy_max_symbols_per_frame)
    # one run of blocks for the whole stream: chunk encoders and search steps share one state
    run = b.start_stream("stream")
    chunk_call: list[int] = []          # index of each chunk's first call in the run
    steps = stats.steps
    released = np.bincount(step_chunks(plan, stats), minlength=plan.n_chunks)
    j = 0
    for c in range(plan.n_chunks):
        chunk_call.append(len(run.calls))
        b.queue_encoder_chunk(c, plan.counts[c])
        for _ in range(int(released[c])):
            search.emit(steps[j])
            j += 1
    first_call_op = len(b)            # the ops before the run: the scorer's set-up (chunk 0)
    sizes = np.array([len(b.blocks[k].code) for k in run.calls], dtype=np.int64)
    offsets = first_call_op + np.concatenate([[0], np.cumsum(sizes)])
    search.finish()
    first_op = offsets[np.asarray(chunk_call, dtype=np.int64)]
    first_op[0] = 0
    meta = graph_meta(config, stats, frames)
    meta["streaming"] = {**meta_stream, "first_op": [int(v) for v in first_op]}
    return b.graph(meta)


def paper_streaming_graph(config: ModelConfig, audio_s: float, beam: int, lm_fusion: str,
                          method: str = "alsd", chunk_ms: float | None = None) -> OpGraph:
    """``streaming_graph`` of ``parametric_stats`` (as ``workloads.rnnt.paper_graph`` offline)."""
    from workloads.stats import input_frames, parametric_stats

    chunk = chunk_frames_of(config, chunk_ms)
    stats = parametric_stats(config, audio_s, beam, lm_fusion, method=method)
    return streaming_graph(config, stats, input_frames(config, audio_s), chunk)


def steady_counts(plan: ChunkPlan) -> tuple[int, ...]:
    """The new frames per layer (and output frames) of the chunks of a stream in steady state:
    the most common row of ``plan.counts`` (ties: the first)."""
    rows, inverse, n = np.unique(plan.counts, axis=0, return_inverse=True, return_counts=True)
    return tuple(int(v) for v in rows[int(np.argmax(n))])


def mean_step(stats):
    """A search step of the decode's average shape (``StepStats`` fields rounded means, no
    merges, finals or capped hyps): what one stream adds to a batched step (``hwsim.serve``)."""
    from models.search.stats import StepStats

    steps = stats.steps
    if not steps:
        raise ValueError("the search statistics have no step")

    def avg(name: str) -> int:
        return int(round(sum(getattr(x, name) for x in steps) / len(steps)))

    return StepStats(step=0, hyps=max(1, avg("hyps")), joint_evals=max(1, avg("joint_evals")),
                     pred_evals=avg("pred_evals"), lm_ext_evals=avg("lm_ext_evals"),
                     lm_src_evals=avg("lm_src_evals"), pred_calls=int(avg("pred_evals") > 0),
                     lm_calls=int(avg("lm_ext_evals") > 0))


def batched_chunk_graph(config: ModelConfig, counts: tuple[int, ...], step, steps: int, beam: int,
                        lm_fusion: str, B: int, chunk_s: float) -> OpGraph:
    """One steady-state chunk of ``B`` streams batched together (``hwsim.serve``): the chunk's
    encoder work (``counts``, ``GraphBuilder.encoder_chunk``) with every row count times ``B``,
    then ``steps`` search steps each of ``B`` streams' ``step`` (``mean_step``) in one call per
    network (rows times ``B``: a weight is read once for the batch) and one selection over the
    ``B`` streams' candidates (``beam * B`` kept) [approximation: a real batch selects per
    stream; the costed elements are the same].

    Planned as one chunk of a stream (``meta["streaming"]["steady"]``): one preloaded segment
    whose on-chip weights are chosen for a steady stream, released at 0.
    """
    b = GraphBuilder(config)
    b.enc_state = [None] * (2 * config.encoder.layers)
    b.scorer_init(max(1, counts[-1] * B), None, lm_fusion == "dr", project=False)
    b.max_scores = 1
    b.start_stream("batch")
    b.queue_encoder_chunk(0, counts, B)
    scaled = replace(step, hyps=step.hyps * B, joint_evals=step.joint_evals * B, pred_evals=step.pred_evals * B,
                     lm_ext_evals=step.lm_ext_evals * B, lm_src_evals=step.lm_src_evals * B, merges=0,
                     finals=0, capped=0)
    for i in range(steps):
        b.search_step(replace(scaled, step=i), beam * B, "all")
    b.finish_search()
    meta = {"model": config.name, "source": f"one steady chunk of {B} batched streams", "batch": B,
            "beam": beam, "lm_fusion": lm_fusion, "frames": 0, "audio_s": chunk_s,
            "streaming": {"chunk_s": chunk_s, "arrival_s": [0.0], "first_op": [0], "steady": True}}
    return b.graph(meta)


def interleave(graph: OpGraph, offsets_s) -> OpGraph:
    """Several live streams of one streaming graph in one op graph, for the op-level simulator:
    stream ``s`` is ``graph`` with every chunk arriving ``offsets_s[s]`` later; the chunks of all
    streams are in order of arrival (ties: the lower stream), each stream's ops keep their
    producers. No batching: every stream runs its own ops (``hwsim.serve`` models batches).

    ``meta["streaming"]`` has ``first_op`` and ``arrival_s`` per (stream, chunk) in that order,
    and ``stream``, ``chunk`` naming each.
    """
    st = graph.meta.get("streaming") or {}
    first = np.asarray(st.get("first_op", []), dtype=np.int64)
    arrival = np.asarray(st.get("arrival_s", []), dtype=np.float64)
    if len(first) < 2:
        raise ValueError("interleave needs a streaming graph of more than one chunk")
    offsets = np.asarray(offsets_s, dtype=np.float64)
    n, C, S = len(graph), len(first), len(offsets)
    bounds = np.append(first, n)
    size = np.diff(bounds)
    t = offsets[:, None] + arrival[None, :]                     # (S, C) arrival of each block
    order = np.lexsort((np.repeat(np.arange(S), C), t.reshape(-1)))
    s_of, c_of = order // C, order % C
    start = np.concatenate([[0], np.cumsum(size[c_of])])[:-1]   # new first op of each block
    new_first = np.empty((S, C), dtype=np.int64)
    new_first[s_of, c_of] = start
    chunk_of_op = np.repeat(np.arange(C), size)
    local = np.arange(n) - first[chunk_of_op]
    new_id = new_first[:, chunk_of_op] + local[None, :]          # (S, n): stream s's op i
    orig = np.concatenate([np.arange(first[c], bounds[c + 1]) for c in c_of])
    stream = np.repeat(s_of, size[c_of])
    code, step, ptr, deps = graph.code, graph.step, *graph.edge_arrays()
    counts = np.diff(ptr)[orig]
    src = np.concatenate([np.arange(ptr[i], ptr[i + 1]) for i in orig]) if len(deps) else np.zeros(0, np.int64)
    new_deps = new_id[np.repeat(stream, counts), deps[src]] if len(src) else np.zeros(0, np.int64)
    meta = {**graph.meta, "source": f"{S} interleaved streams of: {graph.meta.get('source', 'a streaming graph')}",
            "streaming": {**st, "first_op": [int(v) for v in start], "arrival_s": [float(v) for v in t.reshape(-1)[order]],
                          "stream": [int(v) for v in s_of], "chunk": [int(v) for v in c_of]}}
    return OpGraph.from_arrays(graph.templates, code[orig], step[orig], np.concatenate([[0], np.cumsum(counts)]),
                               new_deps, meta)
