"""Cost rows (``hwsim.program``) against one row per op: the compression changes nothing.

``simulate`` costs one row per (template, work group) plus the special ops of the memory plan;
here the same design points are simulated with a program whose every op is its own row (the
per-op semantics, no sharing), on random accelerators. Schedules must agree bit for bit,
per-op tables exactly, totals to 1e-12 (sums in another order).
"""

from dataclasses import replace

import numpy as np
import pytest

from models.config import load_config
from models.quant.policy import load_policy
from workloads import paper_graph

from hwsim.compression import cached_compression
from hwsim.program import lower
from hwsim.simulate import _prepared, _rows, _run
from hwsim.spec import load_spec


def _flat(prog):
    """The program with one base row per op."""
    n = prog.n_ops
    rows = prog.base_row
    return replace(prog, base_row=np.arange(n, dtype=np.int32), row_template=prog.row_template[rows],
                   row_group=prog.row_group[rows], row_count=np.ones(n, dtype=np.int64),
                   row_first_op=np.arange(n, dtype=np.int64),
                   cache={})


def _points(seed: int, k: int):
    rng = np.random.default_rng(seed)
    for i in range(k):
        hw = load_spec(["rapid4", "edge", "host-cpu"][i % 3]).replace_paths({
            "core.scratchpad_bytes": int(rng.choice([0, 2**16, 2**18, 2**20, 2**22])),
            "cores": int(rng.choice([1, 2, 3, 4, 6])),
            "shared_sram_bytes": int(rng.choice([0, 2**20])),
            "dram_bw_bytes_per_s": float(rng.uniform(2e9, 2e11)),
            "mapping.split_min_macs": int(rng.choice([1, 10_000, 10**9])),
        })
        yield hw, ["fp16", "int8", "int4", "fp32"][int(rng.integers(4))]


@pytest.mark.parametrize(("model", "audio_s", "beam"), [("tiny", 1.0, 4), ("small", 3.0, 4)])
def test_rows_equal_one_row_per_op(model, audio_s, beam):
    config = load_config(model)
    graph = paper_graph(config, audio_s, beam, "dr")
    prog = lower(graph)
    flat = _flat(prog)
    assert len(prog.row_template) < prog.n_ops / 5       # the compression is real
    for hw, precision in _points(3, 6):
        policy = load_policy(precision)
        comp = cached_compression(config, policy)
        tprep, rows = _prepared(prog, hw, policy, config, comp)
        a = _run(prog, tprep, rows, hw, policy, config, comp, audio_s, {})
        b = _run(flat, tprep, _rows(flat, tprep), hw, policy, config, comp, audio_s, {})
        oa, ob = a.ops, b.ops
        energy = hw.energy is not None
        for col in ("start_s", "end_s", "core", "cores", "dram_bytes", "ring_bytes", "weight_source",
                    "bound_by", "segment", "group") + (("energy_j",) if energy else ()):
            assert (oa[col].to_numpy() == ob[col].to_numpy()).all(), (hw.name, precision, col)
        sa, sb = a.summary, b.summary
        for key in ("latency_s", "dram_bytes", "macs", "ops", "split_ops", "resident_weights") \
                + (("energy_j",) if energy else ()):
            assert sa[key] == pytest.approx(sb[key], rel=1e-12, abs=0), key
        assert sa["bound_by"] == sb["bound_by"]
        for d in ("phases", "utilization", "dram_bytes_by_source") + (("energy_breakdown_j",) if energy else ()):
            assert sa[d] == pytest.approx(sb[d], rel=1e-12, abs=1e-300), d
        cols = ["busy_s", "macs", "ops", "dram_bytes"] + (["energy_j"] if energy else [])
        np.testing.assert_allclose(a.phases[cols].to_numpy(float), b.phases[cols].to_numpy(float), rtol=1e-12)
        assert a.memory.equals(b.memory)
        # and the totals are those of the per-op table (no op counted twice or missed)
        assert a.phases["ops"].sum() == prog.n_ops and sa["macs"] == graph.totals()["macs"]
        assert sa["dram_bytes"] == pytest.approx(oa["dram_bytes"].sum(), rel=1e-12)
        assert a.phases["busy_s"].sum() == pytest.approx(oa["latency_s"].sum(), rel=1e-12)
        if energy:
            static = sa["energy_breakdown_j"]["static"]
            assert sa["energy_j"] == pytest.approx(oa["energy_j"].sum() + static, rel=1e-12)


def test_reused_plans_give_the_results_of_a_fresh_graph():
    """Design points that share the core allocation or the memory plan of an earlier point reuse
    them (simulate._allocation, _memory_plan): the results must be those of a fresh lowering."""
    from hwsim.simulate import simulate

    config = load_config("tiny")
    graph = paper_graph(config, 1.0, 4, "dr")
    base = load_spec("rapid4")
    variants = [base.replace_paths(c) for c in (
        {}, {"dram_bw_bytes_per_s": 1e10}, {"core.dispatch_overhead_cycles": 500}, {"core.scratchpad_bytes": 2**16},
        {"dram_bw_bytes_per_s": 1e10, "core.scratchpad_bytes": 2**16}, {})]
    shared = [simulate(graph, hw, "int4", 1.0, config=config) for hw in variants]
    for hw, res in zip(variants, shared):
        fresh = simulate(paper_graph(config, 1.0, 4, "dr"), hw, "int4", 1.0, config=config)
        assert res.summary == fresh.summary
        assert (res.ops["end_s"].to_numpy() == fresh.ops["end_s"].to_numpy()).all()
        assert res.memory.equals(fresh.memory) and res.mapping.equals(fresh.mapping)
