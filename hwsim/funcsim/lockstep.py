"""Lockstep comparison: each layer step started from the torch model's own values.

See ``hwsim.funcsim.report`` (module docstring, "Lockstep") for what must be identical and what
differs by design. Every function here takes the torch side's records of one phase
(``report._Records``) and returns ``SlotComparison`` rows.
"""

from __future__ import annotations

import numpy as np

from hwsim.funcsim.export import ActQuant
from hwsim.funcsim.layers import IntLinear, IntLSTM, dequant, int_gemm, stage
from hwsim.funcsim.report import U32, SlotComparison, _compare, _ref_weight_codes, _ref_zp


def _bound_ratio(diff: np.ndarray, k: int, abs_sum: np.ndarray) -> float:
    """max |diff| / ((k + 3) u sum_k |x_k w_k|): <= 1 for float32 rounding differences."""
    bound = (k + 3) * U32 * abs_sum + 1e-45
    return float((np.abs(diff) / bound).max()) if diff.size else 0.0


def _lstm_lockstep(phase, m: IntLSTM, ref: _Records, reference) -> list[SlotComparison]:
    """Each step of ``m`` from the torch model's own inputs: its input codes, previous hidden
    codes and cell state for the GEMMs, its rounded pre-activations for the element-wise part."""
    name = m.name
    xs, hs, cs = ref.steps(name, "q_input"), ref.steps(name, "q_hidden"), ref.steps(name, "q_cell")
    pres, pre32s = ref.steps(name, "q_preact"), ref.steps(name, "preact_f32")
    gates, tcs = ref.steps(name, "q_gate"), ref.steps(name, "q_cell_act")
    if not xs or not hs:
        return []
    w_ih = _ref_weight_codes(reference, name, "q_weight_ih", "weight_ih")
    w_hh = _ref_weight_codes(reference, name, "q_weight_hh", "weight_hh")
    zx, zh = _ref_zp(reference, name, "q_input"), _ref_zp(reference, name, "q_hidden")
    x = np.concatenate([v.reshape(-1, w_ih.shape[1]) for v in xs]).astype(np.int64)
    steps, batch = len(hs), hs[0].reshape(-1, m.hidden).shape[0]
    acc_ih = _int_gemm_of(m.w_ih, x, m.q_in)
    gx = (acc_ih.astype(np.float32) * m.s_ih + m.bias).reshape(-1, batch, 4 * m.hidden)
    x = x - zx
    gx_abs = (np.abs(x) @ np.abs(w_ih).T) * np.float64(m.s_ih) + np.abs(m.bias)
    gx_abs = gx_abs.reshape(-1, batch, 4 * m.hidden)
    h0, c0 = m.initial_state(batch)
    acc_hh, acc_hh_ref, d32, abs32, out = [], [], [], [], {k: ([], []) for k in ("q_preact", "q_gate",
                                                                              "q_cell", "q_cell_act", "q_hidden")}
    for j in range(steps):
        row = steps - 1 - j if m.reverse else j
        h_prev = h0 if j == 0 else hs[j - 1].reshape(batch, -1).astype(np.int8)
        c_prev = c0 if j == 0 else _values(m.cell_p, cs[j - 1].reshape(batch, -1))
        a, pre32 = m.preactivation(gx[row], h_prev)
        acc_hh.append(a)
        acc_hh_ref.append((h_prev.astype(np.int64) - zh) @ w_hh.T)
        d32.append(pre32.astype(np.float64) - pre32s[j].reshape(pre32.shape))
        abs32.append(gx_abs[row] + (np.abs(h_prev.astype(np.int64) - zh) @ np.abs(w_hh).T) * np.float64(m.s_hh))
        out["q_preact"][0].append(stage(m.preact, pre32)[1])
        out["q_preact"][1].append(pres[j].reshape(pre32.shape))
        h, _, (i, f, g, o, c, tc) = m.elementwise(_values(m.preact, pres[j].reshape(pre32.shape)), c_prev)
        out["q_gate"][0].append(np.concatenate([i, f, g, o]))
        out["q_gate"][1].append(np.concatenate([v.reshape(batch, -1) for v in gates[4 * j:4 * j + 4]]))
        for slot, sim_v, ref_v in (("q_cell", c, cs[j]), ("q_cell_act", tc, tcs[j]), ("q_hidden", h, hs[j])):
            out[slot][0].append(sim_v)
            out[slot][1].append(ref_v)
    flat = lambda vs: np.concatenate([np.asarray(v).reshape(-1) for v in vs])  # noqa: E731
    rows = [_compare(phase, name, "acc_ih", "acc", acc_ih.reshape(-1), (x @ w_ih.T).reshape(-1)),
            _compare(phase, name, "acc_hh", "acc", flat(acc_hh), flat(acc_hh_ref))]
    d = flat(d32)
    f32 = SlotComparison(phase, name, "preact_f32", "float", d.size, int(np.count_nonzero(d)),
                         float(np.abs(d).max()) if d.size else 0.0,
                         int(np.flatnonzero(d)[0]) if np.count_nonzero(d) else -1,
                         _bound_ratio(d, w_ih.shape[1] + w_hh.shape[1], flat(abs32)))
    rows.append(f32)
    for slot, (a, b) in out.items():
        rows.append(_compare(phase, name, slot, "codes" if slot == "q_hidden" else "float", flat(a), flat(b)))
    return rows


def _int_gemm_of(w, x: np.ndarray, q_in) -> np.ndarray:
    return int_gemm(np.ascontiguousarray(x, dtype=np.int8), w, q_in.bits, q_in.zero_point)


def _values(q, recorded: np.ndarray) -> np.ndarray:
    """Float32 values of what a torch slot recorded (codes of an integer slot)."""
    return q.dequantize(recorded) if isinstance(q, ActQuant) else np.asarray(recorded, np.float32)


def _linear_lockstep(phase, m: IntLinear, ref: _Records, reference) -> list[SlotComparison]:
    """``m`` on the torch model's own input codes: accumulators, float32 sum, rounded output."""
    name = m.name
    x, y32, y = ref.get(name, "q_input"), ref.get(name, "output_f32"), ref.get(name, "q_output")
    if x is None:
        return []
    w = _ref_weight_codes(reference, name, "q_weight", "weight")
    x = x.reshape(-1, w.shape[1]).astype(np.int64)
    acc = _int_gemm_of(m.weight, x, m.q_in)
    x = x - _ref_zp(reference, name, "q_input")
    rows = [_compare(phase, name, "acc", "acc", acc.reshape(-1), (x @ w.T).reshape(-1))]
    out32 = dequant(acc, m.scale, m.bias)
    if y32 is not None:
        d = out32.reshape(-1).astype(np.float64) - y32
        abs_sum = (np.abs(x) @ np.abs(w).T) * m.scale.astype(np.float64) + (0 if m.bias is None else np.abs(m.bias))
        rows.append(SlotComparison(phase, name, "output_f32", "float", d.size, int(np.count_nonzero(d)),
                                   float(np.abs(d).max()) if d.size else 0.0,
                                   int(np.flatnonzero(d)[0]) if np.count_nonzero(d) else -1,
                                   _bound_ratio(d, w.shape[1], abs_sum.reshape(-1))))
    if y is not None:
        rows.append(_compare(phase, name, "q_output", "float", stage(m.out_precision, out32)[1].reshape(-1), y))
    return rows


def phase_lockstep(phase, modules, ref_rec, reference) -> list[SlotComparison]:
    rows = []
    for m in modules:
        fn = _lstm_lockstep if isinstance(m, IntLSTM) else _linear_lockstep
        rows += [r for r in fn(phase, m, ref_rec, reference) if r is not None]
    return rows
