"""Analytic graph builder: the decode's ``OpGraph`` from a config and search statistics, no torch.

``rnnt_graph(config, stats, frames)`` emits the same aten op sequence that ``workloads.trace``
records from a real ``models.decode`` (same op names, kinds, phases, modules, weights, shapes and
hence MACs and bytes), so that paper-scale models get a graph in seconds. It mirrors, op for op:

- the encoder: ``models.rnnt.Encoder`` over ``models.lstm.LSTMLayer.forward`` (one input GEMM per
  layer and direction, then per frame one recurrent GEMM and the cell's 9 element-wise and
  nonlinear ops, a ``stack`` of the outputs, a ``cat`` of the directions, time reduction);
- per search step, the batched network calls the statistics report (prediction network,
  ``joint.pred_proj`` on new prefixes, external and source LM steps, the joint) and the search's own
  bookkeeping ops (see ``workloads.stats`` for which of those the statistics pin down exactly).

Assumptions shared with the decode being mirrored: batch 1 (one utterance; the encoder's
``reshape``s are then views), FP32 tensors, the cell-level LSTM path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from models.config import ModelConfig, reduced_frames, stacked_frames
from models.params import encoder_layer_input_dims, parameter_table
from workloads.costs import Shape, costed_op
from workloads.blocks import record, replay
from workloads.graph import Op, OpColumns, OpGraph

F32 = "float32"
I64 = "int64"
BOOL = "bool"


class GraphBuilder:
    """Appends ops in program order as ``OpGraph`` columns (template code, step, producers);
    costs come from ``workloads.costs``, once per distinct record.

    Args:
        config: the model, for parameter names and sizes (``models.params.parameter_table``).
    """

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.param_bytes = {p.name: 4 * p.numel for p in parameter_table(config)}
        self.templates: list[Op] = []
        self.cols = OpColumns()                # the ops so far (workloads.graph)
        self._codes: dict[tuple, int] = {}
        self.blocks: list = []                 # recorded blocks (workloads.blocks)
        self.block_index: dict[tuple, int] = {}
        self.enc_state: list[int | None] = []   # (h, c) per encoder layer, streaming only
        self.enc_proj: int | None = None

    def add(self, name: str, phase: str, module: str, step: int, ins: tuple[Shape, ...],
            outs: tuple[Shape, ...], deps: Sequence[int | None] = (), weight: str = "",
            in_dtypes: tuple[str, ...] | None = None, out_dtypes: tuple[str, ...] | None = None) -> int:
        """Append one op; ``deps`` may hold ``None`` (an input with no recorded producer)."""
        in_dtypes = in_dtypes or (F32,) * len(ins)
        out_dtypes = out_dtypes or (F32,) * len(outs)
        key = (name, ins, outs, in_dtypes, out_dtypes, phase, module, weight)
        code = self._codes.get(key)
        if code is None:  # ops that differ only in the step share one template
            code = self._codes[key] = len(self.templates)
            self.templates.append(costed_op(name, phase, module, ins, in_dtypes, outs, out_dtypes, weight,
                                            self.param_bytes[weight] if weight else 0))
        return self.cols.append(code, step, sorted({d for d in deps if d is not None}))

    def __len__(self) -> int:
        return len(self.cols)

    def graph(self, meta: dict | None = None) -> OpGraph:
        return OpGraph.from_arrays(self.templates, *self.cols.arrays(), meta)

    def run(self, tag: tuple, state: list[int | None]) -> BlockRun:
        """A run of repeated blocks (``workloads.blocks``) starting from ``state``."""
        return BlockRun(self, tag, state)


    # ------------------------------------------------------------------------------------------
    # LSTM building blocks (``models.lstm.LSTMLayer``)

    def lstm_cell(self, phase: str, module: str, step: int, gates: int, c: int | None, B: int,
                  H: int) -> tuple[int, int]:
        """``LSTMLayer._cell``: gates (B, 4H) -> (h, c) op ids."""
        s = ((B, H),)
        ss = ((B, H), (B, H))
        add = self.add
        i = add("sigmoid", phase, module, step, s, s, (gates,))
        f = add("sigmoid", phase, module, step, s, s, (gates,))
        g = add("tanh", phase, module, step, s, s, (gates,))
        o = add("sigmoid", phase, module, step, s, s, (gates,))
        fc = add("mul", phase, module, step, ss, s, (f, c))
        ig = add("mul", phase, module, step, ss, s, (i, g))
        c2 = add("add", phase, module, step, ss, s, (fc, ig))
        tc = add("tanh", phase, module, step, s, s, (c2,))
        h2 = add("mul", phase, module, step, ss, s, (o, tc))
        return h2, c2

    def lstm_step(self, phase: str, module: str, step: int, B: int, I: int, H: int, x: int | None,
                  h: int | None, c: int | None) -> tuple[int, int]:
        """``LSTMLayer.step`` (called as the module on a 2-D input): x (B, I) -> (h, c) op ids."""
        G = 4 * H
        gx = self.add("addmm", phase, module, step, ((G,), (B, I), (I, G)), ((B, G),), (x,),
                      f"{module}.weight_ih")
        gates = self.add("addmm", phase, module, step, ((B, G), (B, H), (H, G)), ((B, G),), (gx, h),
                         f"{module}.weight_hh")
        return self.lstm_cell(phase, module, step, gates, c, B, H)

    def lstm_sequence(self, phase: str, module: str, T: int, B: int, I: int, H: int, reverse: bool,
                      x: Sequence[int]) -> int:
        """``LSTMLayer.forward`` on x (T, B, I) from zero state; returns the ``stack`` op id."""
        G = 4 * H
        xp = self.add("addmm", phase, module, -1, ((G,), (T * B, I), (I, G)), ((T * B, G),), x,
                      f"{module}.weight_ih")
        rec_in = ((B, G), (B, H), (H, G))
        rec_out = ((B, G),)
        w_hh = f"{module}.weight_hh"

        def make():
            def frame(t: int, state: list[int | None]):
                gates = self.add("addmm", phase, module, t, rec_in, rec_out, (xp, state[0]), w_hh)
                return list(self.lstm_cell(phase, module, t, gates, state[1], B, H)), None
            return frame

        # one frame: the recurrent GEMM and the cell, repeated (workloads.blocks); state (h, c)
        run = self.run(("lstm_frame", phase, module, B, I, H, xp), [None, None])
        run.repeat(None, range(T - 1, -1, -1) if reverse else range(T), make)
        _, outs = run.finish()
        hs = (outs[::-1, 0] if reverse else outs[:, 0]).tolist()   # h of frames 0..T-1
        return self.add("stack", phase, module, -1, ((B, H),) * T, ((T, B, H),), hs)

    def linear(self, phase: str, module: str, step: int, M: int, K: int, N: int, x: int | None,
               bias: bool = True) -> int:
        """``models.lstm.Linear`` on a 2-D (M, K) input: ``addmm`` (``mm`` without bias)."""
        w = f"{module}.weight"
        if bias:
            return self.add("addmm", phase, module, step, ((N,), (M, K), (K, N)), ((M, N),), (x,), w)
        return self.add("mm", phase, module, step, ((M, K), (K, N)), ((M, N),), (x,), w)

    def embedding(self, phase: str, module: str, step: int, V: int, E: int, B: int,
                  labels: int | None = None) -> int:
        """``models.lstm.Embedding`` of (B,) int64 labels -> (B, E)."""
        return self.add("embedding", phase, module, step, ((V, E), (B,)), ((B, E),), (labels,),
                        f"{module}.weight", in_dtypes=(F32, I64))

    # ------------------------------------------------------------------------------------------

    def encoder(self, frames: int) -> tuple[int, int]:
        """``models.rnnt.Encoder`` on (1, frames, input_dim); returns (last op id, output frames)."""
        cfg = self.config
        f, enc = cfg.features, cfg.encoder
        T = stacked_frames(frames, f.stack, f.stride)
        # Frame stacking (unfold, transpose, reshape) is a view for any stack and stride: the
        # reshape only merges the (stack, D) dims, whose strides are (D, 1).
        x: list[int] = []
        dirs = ("fwd", "bwd") if enc.bidirectional else ("fwd",)
        H = enc.hidden
        last = -1
        for layer, I in enumerate(encoder_layer_input_dims(cfg)):
            outs = [self.lstm_sequence("encoder", f"rnnt.encoder.layers.{layer}.{d}", T, 1, I, H,
                                       d == "bwd", x) for d in dirs]
            if len(outs) > 1:
                outs = [self.add("cat", "encoder", "rnnt.encoder", -1, ((T, 1, H),) * len(outs),
                                 ((T, 1, H * len(outs)),), outs)]
            x = outs
            last = outs[0]
            if enc.time_reduction > 1 and layer + 1 == enc.time_reduction_after:
                r, F = enc.time_reduction, H * len(dirs)
                T = reduced_frames(T, r, enc.time_reduction_method)
                if enc.time_reduction_method == "mean":
                    last = self.add("mean", "encoder", "rnnt.encoder", -1, ((T, r, 1, F),),
                                    ((T, 1, F),), x)
                    x = [last]
        return last, T

    def encoder_chunk(self, step: int, counts: Sequence[int], B: int = 1) -> None:
        """One chunk of a unidirectional ``models.rnnt.Encoder`` run as its audio arrives
        (``workloads.streaming``): per layer, the input projection of the layer's ``counts[layer]``
        new frames, each frame's recurrent GEMM and cell from the state the chunk before left
        (``enc_state``), a ``stack`` of the chunk's outputs and, after the reducing layer, a
        ``mean`` time reduction where the model has one; then ``joint.enc_proj`` of the
        ``counts[-1]`` new output frames (``enc_proj``). A layer without new frames (and every
        layer above it) waits for the next chunk. ``B`` streams batched together (the serving
        model's batches, ``hwsim.serve``) multiply every row count by ``B``.
        """
        cfg = self.config
        enc = cfg.encoder
        H = enc.hidden
        G = 4 * H
        x: list[int] = []
        for layer, I in enumerate(encoder_layer_input_dims(cfg)):
            n = counts[layer]
            if n == 0:
                return
            module = f"rnnt.encoder.layers.{layer}.fwd"
            xp = self.add("addmm", "encoder", module, step, ((G,), (n * B, I), (I, G)), ((n * B, G),), x,
                          f"{module}.weight_ih")
            h, c = self.enc_state[2 * layer], self.enc_state[2 * layer + 1]
            hs = []
            for _ in range(n):
                gates = self.add("addmm", "encoder", module, step, ((B, G), (B, H), (H, G)), ((B, G),),
                                 (xp, h), f"{module}.weight_hh")
                h, c = self.lstm_cell("encoder", module, step, gates, c, B, H)
                hs.append(h)
            self.enc_state[2 * layer:2 * layer + 2] = [h, c]
            x = [self.add("stack", "encoder", module, step, ((B, H),) * n, ((n, B, H),), hs)]
            if enc.time_reduction > 1 and layer + 1 == enc.time_reduction_after \
                    and enc.time_reduction_method == "mean" and counts[layer + 1]:
                m, r = counts[layer + 1], enc.time_reduction
                x = [self.add("mean", "encoder", "rnnt.encoder", step, ((m, r, B, H),), ((m, B, H),), x)]
        n_out = counts[-1]
        if n_out:
            self.enc_proj = self.linear("joint", "rnnt.joint.enc_proj", step, n_out * B, enc.output_dim,
                                        cfg.joint.dim, x[0])

    # ------------------------------------------------------------------------------------------
    # Search (``models.search``): scorer set-up, then per step the scorer's network calls and
    # the selection ops. Dataflow through the prefix caches is approximated: a call's inputs
    # depend on the previous call of the same network, a step's hyp scores on the previous
    # step's selection (the real edges go to whichever earlier step produced each cached row).

    def scorer_init(self, T: int, enc: int | None, fusion: bool, project: bool = True) -> None:
        """``StepScorer.__init__``: ``enc_proj`` on all T frames (unless not ``project``: a
        streaming encoder projects each chunk's frames, ``encoder_chunk``), the non-blank mask."""
        cfg = self.config
        self.T, self.fusion = T, fusion
        if project:
            self.enc_proj = self.linear("joint", "rnnt.joint.enc_proj", -1, T, cfg.encoder.output_dim,
                                        cfg.joint.dim, enc)
        self.add("copy_", "search", "", -1, ((), ()), ((),))  # nonblank[blank] = 0.0
        self.models = ("prediction", "lm_ext", "lm_src") if fusion else ("prediction",)
        self.state: dict[str, list[int | None]] = {
            m: [None] * (2 * (cfg.prediction if m == "prediction" else getattr(cfg, m)).layers)
            for m in self.models}
        self.rows: dict[str, int | None] = {"prediction": None, "lm_ext": None, "lm_src": None}
        self.scores: list[int] = []
        self.max_scores = 1
        self._search: BlockRun | None = None

    # The search's state between steps, as a ``workloads.blocks`` state: the streaming encoder's
    # LSTM states (none offline), the latest ``enc_proj``, every network's LSTM states, its
    # cached rows, then the hypothesis scores (``max_scores`` entries).

    def _search_state(self) -> list[int | None]:
        out: list[int | None] = self.enc_state + [self.enc_proj]
        for m in self.models:
            out += self.state[m]
        out += [self.rows[m] for m in self.models]
        if len(self.scores) > self.max_scores:
            raise ValueError(f"{len(self.scores)} hypothesis scores, max_scores is {self.max_scores}")
        return out + self.scores + [None] * (self.max_scores - len(self.scores))

    def _set_search_state(self, state: list[int | None]) -> None:
        i = len(self.enc_state)
        self.enc_state = list(state[:i])
        self.enc_proj = state[i]
        i += 1
        for m in self.models:
            k = len(self.state[m])
            self.state[m] = list(state[i:i + k])
            i += k
        for m in self.models:
            self.rows[m] = state[i]
            i += 1
        self.scores = [x for x in state[i:] if x is not None]

    def search_step(self, s, beam: int, pool: str = "all", ended: int = 0, capped: int = 0) -> int:
        """Queue one search step (``_search_step``) as a repeated block; ``finish_search`` emits
        the queued steps. Returns the number of candidates selected (top-k size)."""
        key = (s.hyps, s.pred_evals, s.lm_ext_evals, s.lm_src_evals, s.merges, beam, pool, ended, capped)

        def make():
            def fn(step: int, state: list[int | None]):
                self._set_search_state(state)
                k = self._search_step(step, s, beam, pool, ended, capped)
                return self._search_state(), k
            return fn

        if self._search is None:
            self._search = self.run(("search", self.models, self.max_scores), self._search_state())
        return self._search.call(key, s.step, make)

    def start_stream(self, tag: str) -> BlockRun:
        """Begin one run of blocks for a streaming decode (``workloads.streaming``), shared by the
        chunks' encoder work (``queue_encoder_chunk``) and the search steps (``search_step``), so
        that their state (``enc_state``, ``enc_proj``, the search's) flows through one replay."""
        self._search = self.run((tag, self.models, self.max_scores, len(self.enc_state)), self._search_state())
        return self._search

    def queue_encoder_chunk(self, step: int, counts: Sequence[int], B: int = 1) -> None:
        """Queue ``encoder_chunk(step, counts, B)`` as a block of the run ``start_stream`` began."""
        counts = tuple(int(v) for v in counts)

        def make():
            def fn(t: int, state: list[int | None]):
                self._set_search_state(state)
                self.encoder_chunk(t, counts, B)
                return self._search_state(), None
            return fn

        self._search.call(("encoder_chunk", counts, B), step, make)

    def finish_search(self) -> None:
        """Emit the queued search steps; the search state is then the last step's."""
        if self._search is not None:
            state, _ = self._search.finish()
            self._set_search_state(state)
            self._search = None

    def _prefix_call(self, model: str, step: int, M: int) -> None:
        """``PrefixCache.run`` of M new prefixes through ``model`` (prediction, lm_ext or lm_src)."""
        cfg = self.config
        if model == "prediction":
            prefix, phase, net = "rnnt.prediction", "prediction", cfg.prediction
        else:
            prefix, phase, net = model, model, getattr(cfg, model)
        H, V = net.hidden, cfg.num_labels
        state = self.state.setdefault(model, [None] * (2 * net.layers))
        cats = [self.add("cat", "search", "", step, ((1, H),) * M, ((M, H),), (d,)) for d in state]
        x = self.embedding(phase, f"{prefix}.embedding", step, V, net.embed_dim, M)
        I = net.embed_dim
        new: list[int | None] = []
        for layer in range(net.layers):
            x, c = self.lstm_step(phase, f"{prefix}.layers.{layer}", step, M, I, H, x,
                                  cats[2 * layer], cats[2 * layer + 1])
            new += (x, c)
            I = H
        self.state[model] = new
        if model == "prediction":
            self.rows[model] = self.linear("joint", "rnnt.joint.pred_proj", step, M, H, cfg.joint.dim,
                                           x, bias=False)
        else:
            out = self.linear(phase, f"{prefix}.out", step, M, H, V, x)
            self.rows[model] = self.add("log_softmax", phase, prefix, step, ((M, V),), ((M, V),), (out,))

    def _search_step(self, step: int, s, beam: int, pool: str = "all", ended: int = 0,
                     capped: int = 0) -> int:
        """One search step (at ``step``) from its ``StepStats`` ``s``: scoring, totals, top-k, merges.

        Args:
            step: the step index (the ops' ``step``).
            s: the step's statistics (``hyps``, ``pred_evals``, ``lm_ext_evals``, ``merges``).
            beam: beam width (top-k size before clipping to the pool).
            pool: ``all`` (``view(-1)`` of the N x V totals) or ``blank`` (``select(1, 0)``).
            ended: hyps that already ended this frame (TSD), prepended to the pool.
            capped: hyps at ALSD's U_max, whose label columns are masked (``masked_fill``).

        Returns:
            the number of candidates selected (top-k size).
        """
        cfg = self.config
        N, V, J = s.hyps, cfg.num_labels, cfg.joint.dim
        if s.pred_evals:
            self._prefix_call("prediction", step, s.pred_evals)
        if self.fusion and s.lm_ext_evals:
            self._prefix_call("lm_ext", step, s.lm_ext_evals)
            self._prefix_call("lm_src", step, s.lm_src_evals)
        add = self.add
        enc_rows = add("index_select", "search", "", step, ((self.T, J), (N,)), ((N, J),),
                       (self.enc_proj,), in_dtypes=(F32, I64))
        pred_rows = add("cat", "search", "", step, ((1, J),) * N, ((N, J),), (self.rows["prediction"],))
        NJ, NV = ((N, J),), ((N, V),)
        z = add("add", "joint", "rnnt.joint", step, NJ * 2, NJ, (enc_rows, pred_rows))
        z = add("tanh", "joint", "rnnt.joint", step, NJ, NJ, (z,))
        z = self.linear("joint", "rnnt.joint.out", step, N, J, V, z)
        logp = add("log_softmax", "joint", "rnnt.joint", step, NV, NV, (z,))
        if self.fusion:
            ext = add("cat", "search", "", step, ((1, V),) * N, NV, (self.rows["lm_ext"],))
            src = add("cat", "search", "", step, ((1, V),) * N, NV, (self.rows["lm_src"],))
            a = add("mul", "search", "", step, NV, NV, (ext,))
            b = add("mul", "search", "", step, NV, NV, (src,))
            lm = add("sub", "search", "", step, NV * 2, NV, (a, b))
            lm = add("add", "search", "", step, NV, NV, (lm,))
            lm = add("mul", "search", "", step, ((N, V), (V,)), NV, (lm,))
            logp = add("add", "search", "", step, NV * 2, NV, (logp, lm))
        hs = add("stack", "search", "", step, ((),) * N, ((N,),), self.scores)
        totals = add("add", "search", "", step, ((N, 1), (N, V)), NV, (hs, logp))
        if capped:
            mask = add("__and__", "search", "", step, ((N, 1), (V,)), NV, (self.label_columns,),
                       in_dtypes=(BOOL, BOOL), out_dtypes=(BOOL,))
            totals = add("masked_fill", "search", "", step, NV * 2, NV, (totals, mask),
                         in_dtypes=(F32, BOOL))
        P = N * V if pool == "all" else N
        if ended:
            es = add("stack", "search", "", step, ((),) * ended, ((ended,),), self.scores)
            totals = add("cat", "search", "", step, ((ended,), (P,)), ((ended + P,),), (es, totals))
            P += ended
        K = min(beam, P)
        top = add("topk", "search", "", step, ((P,),), ((K,), (K,)), (totals,),
                  out_dtypes=(F32, I64))
        self.scores = [top]
        for _ in range(s.merges):
            m = add("logaddexp", "search", "", step, ((), ()), ((),), (top,))
            add("item", "search", "", step, ((),), (), (m,))
            self.scores.append(m)
        return K


class BlockRun:
    """Blocks queued in program order, recorded once per (tag, key, present state entries) and
    emitted together by ``finish`` (``workloads.blocks.replay``). Nothing else may add ops to
    the builder between the first ``call`` and ``finish``.
    """

    def __init__(self, builder: GraphBuilder, tag: tuple, state: list[int | None]) -> None:
        self.builder, self.tag, self.state = builder, tag, list(state)
        self.present = tuple(x is not None for x in state)
        self.calls: list[int] = []
        self.steps: list[int] = []

    def _block(self, key, make: Callable[[], Callable]) -> int:
        b = self.builder
        k = (self.tag, key, self.present)
        idx = b.block_index.get(k)
        if idx is None:
            idx = b.block_index[k] = len(b.blocks)
            b.blocks.append(record(b, make(), self.present))
        return idx

    def call(self, key, step: int, make: Callable[[], Callable]):
        """Queue the block ``make()`` of ``key`` at ``step``; returns its result.

        ``make()`` returns ``fn(step, state) -> (state after, result)`` adding the block's ops.
        """
        idx = self._block(key, make)
        block = self.builder.blocks[idx]
        self.calls.append(idx)
        self.steps.append(step)
        self.present = block.present_after
        return block.result

    def repeat(self, key, steps: Sequence[int], make: Callable[[], Callable]) -> None:
        """``call(key, t, make)`` for every ``t`` of ``steps``, without Python per call once the
        state's present entries stop changing."""
        steps = list(steps)
        for i, t in enumerate(steps):
            idx = self._block(key, make)
            block = self.builder.blocks[idx]
            if block.present_after == self.present:   # the same block for all the rest
                self.calls += [idx] * (len(steps) - i)
                self.steps += steps[i:]
                return
            self.calls.append(idx)
            self.steps.append(t)
            self.present = block.present_after

    def finish(self) -> tuple[list[int | None], np.ndarray]:
        """Emit the queued blocks; returns the state after the last one and the state after
        each call (calls x entries, -1 = empty)."""
        b = self.builder
        used, calls = np.unique(np.asarray(self.calls, dtype=np.int64), return_inverse=True)
        code, step, counts, deps, outs = replay([b.blocks[i] for i in used], calls.reshape(-1),
                                                np.asarray(self.steps), self.state, len(b))
        b.cols.extend(code, step, counts, deps)
        if len(outs):
            self.state = [None if v < 0 else int(v) for v in outs[-1]]
        self.calls, self.steps = [], []
        return self.state, outs


def rnnt_graph(config: ModelConfig, stats, frames: int, *, tsd_max_symbols_per_frame: int = 3,
               greedy_max_symbols_per_frame: int = 5) -> OpGraph:
    """The decode's op graph from a config and search statistics, without torch.

    Args:
        config: the model.
        stats: ``models.search.SearchStats`` of a real decode or from ``parametric_stats``
            (``method``, ``beam``, ``lm_fusion`` and one ``StepStats`` per search step).
        frames: input feature frames (10 ms each) fed to the encoder.
        tsd_max_symbols_per_frame, greedy_max_symbols_per_frame: the search's per-frame label
            limits (not in ``SearchStats``; the defaults are ``SearchConfig``'s). They decide
            which sub-step pools only the blank column.

    Returns:
        The ``OpGraph``; ``meta`` holds model, frames, audio_s, method, beam, lm_fusion and
        ``search`` (the statistics summary).

    Raises:
        ValueError: ``stats.frames`` disagrees with the encoder output length for ``frames``.
    """
    return _build(config, stats, frames, tsd_max_symbols_per_frame, greedy_max_symbols_per_frame)


class SearchEmitter:
    """Emits a decode's search steps in order, from their ``StepStats``, on a ``GraphBuilder``
    whose scorer is set up (``scorer_init``): the per-method choice of each step's pool, ended
    and capped hyps, and the final read-back of the results. Offline every step is emitted at
    once; a streaming build (``workloads.streaming``) emits each chunk's steps after its encoder
    work.

    Args:
        tsd_max_symbols_per_frame, greedy_max_symbols_per_frame: the search's per-frame label
            limits (see ``rnnt_graph``).
    """

    def __init__(self, b: GraphBuilder, stats, tsd_max_symbols_per_frame: int,
                 greedy_max_symbols_per_frame: int) -> None:
        if stats.method not in ("alsd", "greedy", "tsd"):
            raise ValueError(f"unknown search method {stats.method!r}")
        self.b, self.stats = b, stats
        self.tsd_max, self.greedy_max = tsd_max_symbols_per_frame, greedy_max_symbols_per_frame
        self.kept = 0
        self.finals = 0
        b.max_scores = 1 + max((s.merges for s in stats.steps), default=0)
        if stats.method == "alsd":
            V = b.config.num_labels
            b.label_columns = b.add("ne", "search", "", -1, ((V,),), ((V,),), in_dtypes=(I64,),
                                    out_dtypes=(BOOL,))

    def emit(self, s) -> None:
        """Queue step ``s`` (steps in order)."""
        b, beam, method = self.b, self.stats.beam, self.stats.method
        if method == "alsd":
            self.kept = b.search_step(s, beam, "all", 0, s.capped) - s.merges
            self.finals += s.finals
        elif method == "greedy":
            forced = s.substep == self.greedy_max
            b.search_step(s, 1, "blank" if forced else "all")
        else:
            # hyps that ended the frame at earlier sub-steps = survivors of the previous
            # sub-step (selected minus merged) not expanded again now
            ended = 0 if s.substep == 0 else max(0, self.kept - s.hyps)
            last = s.substep >= self.tsd_max
            self.kept = b.search_step(s, beam, "blank" if last else "all", ended) - s.merges

    def finish(self) -> None:
        """Emit the queued steps, then the read-back of the results (``item`` per result)."""
        b, beam, method = self.b, self.stats.beam, self.stats.method
        if method == "alsd":
            # the best ``beam`` final hyps have their scores read back (``float``); if none became
            # final, the live ones of the last step [upper bound: candidates masked to -inf at
            # U_max are dropped too, which the statistics do not count]
            results = min(beam, self.finals) if self.finals else min(beam, self.kept)
        elif method == "greedy":
            results = 1
        else:
            results = min(beam, self.kept)
        b.finish_search()
        for _ in range(results):
            b.add("item", "search", "", -1, ((),), (), b.scores[:1])


def graph_meta(config: ModelConfig, stats, frames: int) -> dict:
    """``OpGraph.meta`` of a built decode (see ``rnnt_graph``)."""
    summary = stats.summary() if hasattr(stats, "summary") else {}
    return {"model": config.name, "frames": frames, "audio_s": frames * config.features.frame_shift_s,
            "method": stats.method, "beam": stats.beam, "lm_fusion": stats.lm_fusion, "source": "analytic",
            "search": summary}


def check_stats_frames(config: ModelConfig, stats, frames: int, T: int) -> None:
    if stats.frames and stats.frames != T:
        raise ValueError(f"statistics are for {stats.frames} encoder frames, but {frames} input "
                         f"frames give {T} for model {config.name!r}")


def _build(config: ModelConfig, stats, frames: int, tsd_max_symbols_per_frame: int,
           greedy_max_symbols_per_frame: int) -> OpGraph:
    b = GraphBuilder(config)
    enc, T = b.encoder(frames)
    check_stats_frames(config, stats, frames, T)
    b.scorer_init(T, enc, stats.lm_fusion == "dr")
    search = SearchEmitter(b, stats, tsd_max_symbols_per_frame, greedy_max_symbols_per_frame)
    for s in stats.steps:
        search.emit(s)
    search.finish()
    return b.graph(graph_meta(config, stats, frames))


def paper_graph(config: ModelConfig, audio_s: float, beam: int, lm_fusion: str,
                method: str = "alsd") -> OpGraph:
    """``rnnt_graph`` of ``parametric_stats``: the graph of decoding ``audio_s`` seconds at paper
    scale without running a decode (``hwsim simulate`` calls exactly this).

    Args:
        config: the model. audio_s: seconds of audio. beam: beam width.
        lm_fusion: ``none`` or ``dr``. method: ``alsd``, ``tsd`` or ``greedy``.
    """
    from workloads.stats import input_frames, parametric_stats

    stats = parametric_stats(config, audio_s, beam, lm_fusion, method=method)
    return rnnt_graph(config, stats, input_frames(config, audio_s))
