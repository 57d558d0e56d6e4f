"""Equality report: the integer functional simulation against the fake-quantized torch model.

Both run free (neither is fed the other's values) on the same input, phase by phase:

- ``encoder``: the utterance's features through every encoder layer;
- ``enc_proj``: the joint's encoder projection of the encoder output;
- ``prediction``, ``lm_ext``, ``lm_src``: teacher-forced chains over one label sequence
  (<sos>, then the labels of the torch model's best hypothesis), from the zero state;
- ``joint``: every (frame, prefix) pair of those projections;
- the full decode (greedy / ALSD / TSD, with or without DR fusion): n-best labels.

What is compared, per module and quantizer slot (``SlotComparison``):

- ``codes``: integer activation codes. The torch side's codes are its quantizer outputs divided
  by the scale (plus the zero point), exact integers. Identical unless a float difference
  (below) was carried to a rounding tie; the lockstep comparison separates the two.
- ``acc``: INT32 accumulators. The torch model has none; its accumulators are computed here with
  an int64 numpy matmul of its own input codes and its own weight codes (from its quantizers), so
  a wrong weight, packing, zero point or kernel in the simulation shows up. Identical whenever the
  input codes are.
- ``float``: fp16 / fp32 signals (pre-activations, gates, cell state, logits, log-probs) with
  their largest absolute difference. ``preact_f32`` (the gate pre-activation before its fp16
  rounding) also carries ``bound_ratio``: max |difference| divided by the float32 rounding bound
  ``(K + 3) u sum_k |x_k w_k|`` (u = 2**-24) of torch's float32 dot products on dequantized values
  versus the exact integer sum scaled once. A ratio <= 1 says that the difference is rounding.

Lockstep (``EqualityReport.lockstep``): every layer once more, each step started from the torch
model's own values (its input codes, previous hidden codes and cell state for the GEMMs, its
rounded pre-activations for the element-wise part; its projections for the joint's tanh), so
that no difference is carried from one step to the next. What must then be identical
(``LOCKSTEP_EXACT``, ``EqualityReport.lockstep_exact``): every accumulator, every gate signal,
cell state, ``tanh(c)`` and hidden code. What is not, by design: the float32 GEMM sums
(``preact_f32``, ``output_f32``: within their rounding bound), their rounding to fp16 / the output
precision (``q_preact``, ``q_output``), and the joint's input codes after torch's float32 tanh,
which is not correctly rounded (``tanh_codes``). A free-running mismatch with an exact lockstep is
therefore a float32 rounding difference carried forward, never a wrong integer.

Why float parts are not always bit-identical: torch computes ``sum_k fl32(c_x s_x) fl32(c_w s_w)``
in float32 (with its own summation order), the simulation the exact integer sum times
``fl32(s_x s_w)``; the two differ by float32 rounding (a few ulp32). After rounding to fp16 the two
agree except when the float32 value lies within those few ulp32 of an fp16 rounding boundary;
then the fp16 values differ by one ulp16, and so can every value computed from it. A requantized
code differs only if such a difference moves ``x / scale`` across a rounding tie of the integer
grid. Mismatches are counted and reported, never hidden; ``first_mismatch`` gives the element
index where a chain first departed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from hwsim.funcsim.layers import IntLinear, IntLSTM
from hwsim.funcsim.system import IntSystem
from hwsim.kernels import sfu_tanh

U32 = 2.0 ** -24
INT_SLOTS = ("q_input", "q_hidden")
FLOAT_SLOTS = ("preact_f32", "q_preact", "q_gate", "q_cell", "q_cell_act", "q_output")
#: Lockstep slots that must be identical given identical inputs (the rest is the rounding of float32
#: GEMM sums: ``q_preact``, ``q_output``; ``LOCKSTEP_F32``: the sums themselves, bounded).
LOCKSTEP_EXACT = ("acc_ih", "acc_hh", "acc", "q_gate", "q_cell", "q_cell_act", "q_hidden")
LOCKSTEP_F32 = ("preact_f32", "output_f32")


@dataclass
class SlotComparison:
    """One (module, slot) compared over a phase.

    Attributes:
        phase: ``encoder``, ``enc_proj``, ``prediction``, ``lm_ext``, ``lm_src``, ``joint``.
        module, slot: where (``acc_ih`` / ``acc_hh`` / ``acc`` for accumulators, ``logp`` for
            log-probabilities).
        kind: ``codes``, ``acc`` or ``float``.
        elements: values compared. mismatches: values that differ.
        max_abs_diff: largest |sim - torch| (code units for codes and accumulators).
        first_mismatch: flat index of the first difference, -1 if none.
        bound_ratio: ``preact_f32`` only: max |diff| / float32 rounding bound (None elsewhere, or
            when the inputs already differed).
    """

    phase: str
    module: str
    slot: str
    kind: str
    elements: int
    mismatches: int
    max_abs_diff: float
    first_mismatch: int = -1
    bound_ratio: float | None = None


@dataclass
class EqualityReport:
    """Result of :func:`equality_report`.

    Attributes:
        rows: one ``SlotComparison`` per (phase, module, slot).
        nbest_identical: the decodes returned the same n-best label sequences, in order.
        torch_nbest, sim_nbest: (labels, score) lists, best first.
        score_max_abs_diff: largest |score difference| over the n-best (when identical).
        search: the search settings (dict).
    """

    rows: list[SlotComparison]
    nbest_identical: bool
    torch_nbest: list[tuple[tuple[int, ...], float]]
    sim_nbest: list[tuple[tuple[int, ...], float]]
    score_max_abs_diff: float | None
    search: dict = field(default_factory=dict)
    lockstep: list[SlotComparison] = field(default_factory=list)

    def mismatches(self, kind: str) -> int:
        """Total mismatching values of a kind (``codes``, ``acc``, ``float``)."""
        return sum(r.mismatches for r in self.rows if r.kind == kind)

    @property
    def integer_exact(self) -> bool:
        """All accumulators and activation codes identical."""
        return self.mismatches("codes") == 0 and self.mismatches("acc") == 0

    def lockstep_mismatches(self, exact: bool) -> int:
        """Lockstep values that differ: in the parts that must be exact (accumulators, gates,
        cell, hidden codes given the same inputs), or in the fp16 / output rounding of the float32
        GEMM sums (``exact=False``: the stated non-exact part)."""
        return sum(r.mismatches for r in self.lockstep if (r.slot in LOCKSTEP_EXACT) == exact
                   and r.slot not in LOCKSTEP_F32)

    def lockstep_elements(self, exact: bool) -> int:
        return sum(r.elements for r in self.lockstep if (r.slot in LOCKSTEP_EXACT) == exact
                   and r.slot not in LOCKSTEP_F32)

    @property
    def lockstep_exact(self) -> bool:
        """Given the torch model's own inputs at every step, everything but the float32 GEMM sums
        (and their rounding) is identical, and those sums differ within their rounding bound."""
        ratio = max((r.bound_ratio for r in self.lockstep if r.bound_ratio is not None), default=0.0)
        return bool(self.lockstep) and self.lockstep_mismatches(exact=True) == 0 and ratio <= 1.0

    def max_float_diff(self, slot: str | None = None) -> float:
        vals = [r.max_abs_diff for r in self.rows if r.kind == "float" and (slot is None or r.slot == slot)]
        return max(vals, default=0.0)

    def max_bound_ratio(self) -> float | None:
        vals = [r.bound_ratio for r in self.rows if r.bound_ratio is not None]
        return max(vals) if vals else None

    def modules(self) -> list[dict]:
        """Per-module summary: codes / accumulators compared and mismatching, max float diff."""
        out: dict[tuple[str, str], dict] = {}
        for r in self.rows:
            d = out.setdefault((r.phase, r.module), {"phase": r.phase, "module": r.module, "codes": 0,
                                                      "code_mismatches": 0, "accs": 0, "acc_mismatches": 0,
                                                      "float_mismatches": 0, "max_float_abs_diff": 0.0})
            if r.kind == "codes":
                d["codes"] += r.elements
                d["code_mismatches"] += r.mismatches
            elif r.kind == "acc":
                d["accs"] += r.elements
                d["acc_mismatches"] += r.mismatches
            else:
                d["float_mismatches"] += r.mismatches
                d["max_float_abs_diff"] = max(d["max_float_abs_diff"], r.max_abs_diff)
        return list(out.values())

    def to_dict(self) -> dict:
        ls_ratio = max((r.bound_ratio for r in self.lockstep if r.bound_ratio is not None), default=None)
        return {"integer_exact": self.integer_exact, "nbest_identical": self.nbest_identical,
                "lockstep_exact": self.lockstep_exact,
                "lockstep_exact_mismatches": self.lockstep_mismatches(exact=True),
                "lockstep_exact_elements": self.lockstep_elements(exact=True),
                "lockstep_rounding_mismatches": self.lockstep_mismatches(exact=False),
                "lockstep_rounding_elements": self.lockstep_elements(exact=False),
                "lockstep_max_bound_ratio": ls_ratio,
                "lockstep_rows": [asdict(r) for r in self.lockstep],
                "code_mismatches": self.mismatches("codes"), "acc_mismatches": self.mismatches("acc"),
                "float_mismatches": self.mismatches("float"), "max_float_abs_diff": self.max_float_diff(),
                "max_preact_bound_ratio": self.max_bound_ratio(),
                "score_max_abs_diff": self.score_max_abs_diff, "search": self.search,
                "torch_nbest": [[list(l), s] for l, s in self.torch_nbest],
                "sim_nbest": [[list(l), s] for l, s in self.sim_nbest],
                "modules": self.modules(), "rows": [asdict(r) for r in self.rows]}

    def format(self) -> str:
        """Plain-text table, one line per module."""
        lines = [f"{'phase':<11}{'module':<28}{'codes':>9}{'mism':>6}{'accs':>9}{'mism':>6}"
                 f"{'float_mism':>11}{'max_float_diff':>16}"]
        for m in self.modules():
            lines.append(f"{m['phase']:<11}{m['module']:<28}{m['codes']:>9}{m['code_mismatches']:>6}"
                         f"{m['accs']:>9}{m['acc_mismatches']:>6}{m['float_mismatches']:>11}"
                         f"{m['max_float_abs_diff']:>16.3g}")
        ratio = self.max_bound_ratio()
        lines.append(f"free-running: integer codes and accumulators identical: "
                     f"{'yes' if self.integer_exact else 'NO'} (code mismatches {self.mismatches('codes')}, "
                     f"accumulator mismatches {self.mismatches('acc')})")
        if self.lockstep:
            ls_ratio = max((r.bound_ratio for r in self.lockstep if r.bound_ratio is not None), default=0.0)
            lines.append(f"lockstep (every step from the torch model's own inputs): exact parts identical: "
                         f"{'yes' if self.lockstep_exact else 'NO'} (accumulators, gates, cell state and "
                         f"codes: {self.lockstep_mismatches(exact=True)} of "
                         f"{self.lockstep_elements(exact=True)} differ; float32 GEMM sums within "
                         f"{ls_ratio:.3g} of their rounding bound); not exact by design: their rounding "
                         f"to fp16 / the output precision, and the joint's codes after torch's float32 "
                         f"tanh (not correctly rounded): {self.lockstep_mismatches(exact=False)} of "
                         f"{self.lockstep_elements(exact=False)} differ")
            if not self.integer_exact and self.lockstep_exact:
                lines.append("  the free-running differences start in float32 rounding: torch adds "
                             "dequantized products in float32, funcsim scales the exact integer sum "
                             "once; a value one fp16 ulp apart is carried forward (through the recurrence, "
                             "into the joint) and, near a rounding tie, changes a code")
        lines.append(f"float32 pre-activation difference / rounding bound: "
                     f"{'n/a' if ratio is None else f'{ratio:.3g}'}; float values differing: "
                     f"{self.mismatches('float')}, max |diff| {self.max_float_diff():.3g}")
        lines.append(f"n-best identical: {'yes' if self.nbest_identical else 'NO'}"
                     + ("" if self.score_max_abs_diff is None else
                        f" (max |score diff| {self.score_max_abs_diff:.3g})"))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------


class _Records:
    """(module, slot) -> list of arrays, in call order."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)

    def __call__(self, module: str, slot: str, value: np.ndarray) -> None:
        self.data[(module, slot)].append(np.array(value, copy=True))

    def get(self, module: str, slot: str) -> np.ndarray | None:
        vals = self.data.get((module, slot))
        return None if not vals else np.concatenate([v.reshape(-1) for v in vals])

    def steps(self, module: str, slot: str) -> list[np.ndarray]:
        return self.data.get((module, slot), [])


class _TorchHooks:
    """Forward hooks on every activation quantizer of the torch model, recording into _Records."""

    def __init__(self, reference) -> None:
        from models.quant.qsystem import WEIGHT_SLOTS, quant_slots
        from models.quant.quantizers import IntQuantizer

        self.records = _Records()
        self.handles = []
        for module_name, _, slot, q in quant_slots(reference):
            if slot in WEIGHT_SLOTS:
                continue
            self.handles.append(q.register_forward_hook(self._hook(module_name, slot, q, IntQuantizer)))

    def _hook(self, module_name, slot, q, int_cls):
        def hook(_mod, inputs, output):
            out = output.detach().numpy()
            if isinstance(q, int_cls):
                scale = np.float32(q.scale.reshape(-1)[0])
                zp = float(q.zero_point.reshape(-1)[0])
                v = out.astype(np.float64) / np.float64(scale) + zp
                codes = np.rint(v)
                if codes.size and np.abs(v - codes).max() > 1e-3:
                    raise AssertionError(f"{module_name}.{slot}: quantized values are not code * scale")
                self.records(module_name, slot, codes.astype(np.int64))
            else:
                self.records(module_name, slot, out)
            if slot == "q_preact":
                self.records(module_name, "preact_f32", inputs[0].detach().numpy())
            elif slot == "q_output":
                self.records(module_name, "output_f32", inputs[0].detach().numpy())
        return hook

    def new_phase(self) -> _Records:
        rec, self.records = self.records, _Records()
        return rec

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _compare(phase, module, slot, kind, a, b) -> SlotComparison | None:
    if a is None and b is None:
        return None
    if a is None or b is None or a.size != b.size:
        n = max(0 if a is None else a.size, 0 if b is None else b.size)
        return SlotComparison(phase, module, slot, kind, n, n, float("inf"), 0)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a64 - b64)
    bad = np.flatnonzero(diff != 0)
    return SlotComparison(phase, module, slot, kind, int(a.size), int(bad.size),
                          float(diff.max()) if diff.size else 0.0, int(bad[0]) if bad.size else -1)


def _ref_weight_codes(reference, module: str, slot: str, attr: str) -> np.ndarray:
    """The torch model's weight codes less their zero points, int64 (N, K): what the GEMM sums."""
    mod = dict(reference.named_modules())[module]
    q = getattr(mod, slot)
    codes = q.codes(getattr(mod, attr)).numpy().astype(np.int64)
    zp = q.zero_point.detach().numpy().astype(np.int64).reshape(-1)
    return codes - np.repeat(zp, codes.shape[0] // zp.size)[:, None]


def _ref_zp(reference, module: str, slot: str) -> int:
    """Zero point of the torch model's activation quantizer ``slot`` of ``module``."""
    q = getattr(dict(reference.named_modules())[module], slot)
    zp = getattr(q, "zero_point", None)
    return 0 if zp is None else int(zp.reshape(-1)[0])


def _lstm_rows(phase, m: IntLSTM, sim: _Records, ref: _Records, reference) -> list[SlotComparison]:
    rows = []
    name = m.name
    for slot in INT_SLOTS:
        rows.append(_compare(phase, name, slot, "codes", sim.get(name, slot), ref.get(name, slot)))
    x = ref.get(name, "q_input")
    hs = ref.steps(name, "q_hidden")
    if x is None or not hs:
        return [r for r in rows if r is not None]
    w_ih = _ref_weight_codes(reference, name, "q_weight_ih", "weight_ih")
    w_hh = _ref_weight_codes(reference, name, "q_weight_hh", "weight_hh")
    zx, zh = _ref_zp(reference, name, "q_input"), _ref_zp(reference, name, "q_hidden")
    x = x.reshape(-1, w_ih.shape[1]) - zx
    # the zero state (value 0) and then the recorded codes, less the zero point
    h_prev = np.concatenate([np.zeros_like(hs[0])] + [h - zh for h in hs[:-1]]).reshape(-1, w_hh.shape[1])
    acc_ih, acc_hh = x @ w_ih.T, h_prev @ w_hh.T
    rows.append(_compare(phase, name, "acc_ih", "acc", sim.get(name, "acc_ih"), acc_ih.reshape(-1)))
    rows.append(_compare(phase, name, "acc_hh", "acc", sim.get(name, "acc_hh"), acc_hh.reshape(-1)))
    for slot in FLOAT_SLOTS[:-1]:
        rows.append(_compare(phase, name, slot, "float", sim.get(name, slot), ref.get(name, slot)))
    # float32 rounding bound of the pre-activation, where the integer inputs agree
    pre = rows[-5]  # preact_f32
    if rows[0].mismatches == 0 and pre is not None and pre.elements == acc_hh.size and not np.isinf(pre.max_abs_diff):
        gx_abs = (np.abs(x) @ np.abs(w_ih).T) * np.float64(m.s_ih) + np.abs(m.bias)
        if m.reverse:
            gx_abs = gx_abs[::-1]  # the recurrence ran from the last frame to the first
        if all(np.array_equal(a, b) for a, b in zip(hs[:-1], sim.steps(name, "q_hidden")[:-1])):
            total = gx_abs + (np.abs(h_prev) @ np.abs(w_hh).T) * np.float64(m.s_hh)
            k = w_ih.shape[1] + w_hh.shape[1] + 3
            bound = k * U32 * total + 1e-45
            d = np.abs(sim.get(name, "preact_f32").astype(np.float64) - ref.get(name, "preact_f32"))
            pre.bound_ratio = float((d / bound.reshape(-1)).max())
    return [r for r in rows if r is not None]


def _linear_rows(phase, m: IntLinear, sim: _Records, ref: _Records, reference) -> list[SlotComparison]:
    name = m.name
    rows = [_compare(phase, name, "q_input", "codes", sim.get(name, "q_input"), ref.get(name, "q_input"))]
    x = ref.get(name, "q_input")
    if x is not None:
        w = _ref_weight_codes(reference, name, "q_weight", "weight")
        acc = (x.reshape(-1, w.shape[1]) - _ref_zp(reference, name, "q_input")) @ w.T
        rows.append(_compare(phase, name, "acc", "acc", sim.get(name, "acc"), acc.reshape(-1)))
    rows.append(_compare(phase, name, "q_output", "float", sim.get(name, "q_output"), ref.get(name, "q_output")))
    return [r for r in rows if r is not None]


def _phase_rows(phase, modules, sim_rec, ref_rec, reference) -> list[SlotComparison]:
    rows = []
    for m in modules:
        if isinstance(m, IntLSTM):
            rows += _lstm_rows(phase, m, sim_rec, ref_rec, reference)
        else:
            rows += _linear_rows(phase, m, sim_rec, ref_rec, reference)
    return rows


def equality_report(sim: IntSystem, reference, features, beam: int = 4, method: str = "alsd",
                    lm_fusion: str = "dr", labels: tuple[int, ...] | None = None) -> EqualityReport:
    """Compare the functional simulation with the fake-quantized torch model.

    Args:
        sim: the integer system.
        reference: the fake-quantized torch system (``models.quant.load`` of the same export, or
            ``models.quant.quantize`` output).
        features: (T, input_dim) float features of one utterance.
        beam, method, lm_fusion: decode settings of the n-best comparison.
        labels: label sequence of the teacher-forced prediction / LM / joint comparison; default
            the torch model's best hypothesis (or labels 1..5 when it is empty).

    Returns:
        ``EqualityReport`` (see the module docstring).
    """
    import torch

    import models
    from hwsim.funcsim.lockstep import phase_lockstep
    from hwsim.funcsim.search import decode

    feats = torch.as_tensor(np.asarray(features, np.float32))
    ref_dec = models.decode(reference, feats, beam=beam, method=method, lm_fusion=lm_fusion)
    sim_dec = decode(sim, feats.numpy(), beam=beam, method=method, lm_fusion=lm_fusion)
    ref_nbest, sim_nbest = ref_dec.hyps, sim_dec.hyps
    same = [h[0] for h in ref_nbest] == [h[0] for h in sim_nbest]
    score_diff = max((abs(a[1] - b[1]) for a, b in zip(ref_nbest, sim_nbest)), default=0.0) if same else None
    if labels is None:
        labels = ref_dec.labels or tuple(range(1, min(6, sim.config.num_labels)))
    seq = (0,) + tuple(labels)

    hooks = _TorchHooks(reference)
    rows: list[SlotComparison] = []
    lock: list[SlotComparison] = []
    try:
        with torch.inference_mode():
            rnnt = reference.rnnt
            # encoder and its projection
            sim_rec = _Records()
            enc_ref = rnnt.encoder(feats.unsqueeze(0))[0]
            enc_sim = sim.encoder(feats.numpy(), sim_rec)
            enc_layers = [m for layer in sim.encoder.layers for m in layer.values()]
            ref_rec = hooks.new_phase()
            rows += _phase_rows("encoder", enc_layers, sim_rec, ref_rec, reference)
            lock += phase_lockstep("encoder", enc_layers, ref_rec, reference)
            sim_rec = _Records()
            ep_ref = rnnt.joint.enc_proj(enc_ref)
            ep_sim = sim.joint.project_enc(enc_sim, sim_rec)
            ref_rec = hooks.new_phase()
            rows += _phase_rows("enc_proj", [sim.joint.enc_proj], sim_rec, ref_rec, reference)
            lock += phase_lockstep("enc_proj", [sim.joint.enc_proj], ref_rec, reference)
            # teacher-forced prediction net and pred_proj
            sim_rec = _Records()
            state_r, state_s, pp_ref, pp_sim = None, None, [], []
            for y in seq:
                out_r, state_r = rnnt.prediction(torch.tensor([y]), state_r)
                pp_ref.append(rnnt.joint.pred_proj(out_r))
                h, state_s = sim.prediction(np.array([y]), state_s, sim_rec)
                pp_sim.append(sim.joint.project_pred(h, sim.prediction.q_out, sim_rec))
            ref_rec, pred_mods = hooks.new_phase(), sim.prediction.layers + [sim.joint.pred_proj]
            rows += _phase_rows("prediction", pred_mods, sim_rec, ref_rec, reference)
            lock += phase_lockstep("prediction", pred_mods, ref_rec, reference)
            # both LMs over the same labels
            for lm_name in ("lm_ext", "lm_src"):
                sim_rec = _Records()
                lm_r, lm_s = getattr(reference, lm_name), getattr(sim, lm_name)
                state_r, state_s, lp_r, lp_s = None, None, [], []
                for y in seq:
                    out_r, state_r = lm_r(torch.tensor([y]), state_r)
                    lp_r.append(out_r.numpy())
                    out_s, state_s = lm_s(np.array([y]), state_s, sim_rec)
                    lp_s.append(out_s)
                ref_rec, lm_mods = hooks.new_phase(), lm_s.stack.layers + [lm_s.out]
                rows += _phase_rows(lm_name, lm_mods, sim_rec, ref_rec, reference)
                lock += phase_lockstep(lm_name, lm_mods, ref_rec, reference)
                rows.append(_compare(lm_name, lm_name, "logp", "float", np.concatenate(lp_s).reshape(-1),
                                     np.concatenate(lp_r).reshape(-1)))
            # joint over every (frame, prefix) pair
            sim_rec = _Records()
            T, U1 = ep_ref.shape[0], len(seq)
            e_r = ep_ref.repeat_interleave(U1, 0)
            p_r = torch.cat(pp_ref).repeat(T, 1)
            logp_r = rnnt.joint(e_r, p_r, projected=True).numpy()
            e_s = np.repeat(ep_sim, U1, axis=0)
            p_s = np.tile(np.concatenate(pp_sim), (T, 1))
            logp_s = sim.joint(e_s, p_s, sim_rec)
            ref_rec = hooks.new_phase()
            rows += _phase_rows("joint", [sim.joint.out], sim_rec, ref_rec, reference)
            lock += phase_lockstep("joint", [sim.joint.out], ref_rec, reference)
            # the joint's tanh (fp32, no quantizer slot before it) on the torch model's projections
            z = sfu_tanh(e_r.numpy() + p_r.numpy(), "fp32")
            lock.append(_compare("joint", sim.joint.out.name, "tanh_codes", "codes",
                                 sim.joint.out.q_in.quantize(z).reshape(-1),
                                 ref_rec.get(sim.joint.out.name, "q_input")))
            rows.append(_compare("joint", "rnnt.joint", "logp", "float", logp_s.reshape(-1), logp_r.reshape(-1)))
    finally:
        hooks.close()
    search = {"beam": beam, "method": method, "lm_fusion": lm_fusion, "frames": sim_dec.stats.frames,
              "teacher_forced_labels": list(labels)}
    return EqualityReport(rows, same, ref_nbest, sim_nbest, score_diff, search, lock)
