"""hwsim.validate: error statistics, the cases, the prediction path, the decode-case builder
(no timing is asserted)."""

import json
from pathlib import Path

import pytest

from hwsim.cli import main
from hwsim.spec import load_spec
from hwsim.validate import (BEAM_M, GEMM_M, K_N, Case, decode_case, error_stats, gemm_cases, predict_gemm,
                            resolve_presets, summarize)
from models.config import load_config
from models.params import parameter_table
from models.yamlio import UserError


def _case(name, pred, meas, kind="gemm", exe="aten", p="fp32"):
    return Case(name, kind, exe, p, 1, 2, 3, predicted_s=pred, measured_s=meas, ratio=pred / meas)


def test_error_stats_by_hand():
    # ratios 1.1, 0.8, 1.5, 1.0, 0.95 -> |r - 1| = 0.1, 0.2, 0.5, 0, 0.05; sorted 0, .05, .1, .2, .5
    cases = [_case("a", 1.1, 1.0), _case("b", 0.8, 1.0), _case("c", 3.0, 2.0), _case("d", 2.0, 2.0),
             _case("e", 0.95, 1.0)]
    s = error_stats(cases)
    assert s["median_abs_err"] == pytest.approx(0.1)
    # numpy's linear interpolation: position 0.9 * (5 - 1) = 3.6 -> 0.2 + 0.6 * (0.5 - 0.2)
    assert s["p90_abs_err"] == pytest.approx(0.38)
    assert s["n"] == 5 and s["worst"] == "c"
    assert error_stats([])["median_abs_err"] is None


def test_summary_groups_by_kind_and_precision():
    cases = [_case("g1", 1.2, 1.0), _case("g2", 1.0, 1.0, p="int8"),
             _case("d1", 0.5, 1.0, kind="decode", exe="torch")]
    s = summarize(cases)
    assert s["n"] == 3 and s["median_abs_err"] == pytest.approx(0.2)
    assert s["by_kind"]["decode"]["median_abs_err"] == pytest.approx(0.5)
    assert s["by_kind"]["gemm"]["n"] == 2
    assert set(s["by_precision"]) == {"gemm.aten.fp32", "gemm.aten.int8", "decode.torch.fp32"}
    json.dumps(s)   # plain JSON


def test_gemm_cases_cover_the_rnnt_shapes():
    cases = gemm_cases()
    assert len(cases) >= 40 and len({c.name for c in cases}) == len(cases)
    assert {c.m for c in cases} == set(GEMM_M) | set(BEAM_M) and {1, 4, 8, 16, 250} <= {c.m for c in cases}
    assert {(c.executor, c.precision) for c in cases} == {("aten", "fp32"), ("aten", "bf16"), ("aten", "int8"),
                                                          ("numba", "int8"), ("numba", "int4")}
    # every (k, n) is a weight of the swb300 or small model (nn.Linear layout: shape (n, k))
    shapes = {tuple(p.shape) for name in ("swb300", "small") for p in parameter_table(load_config(name))
              if len(p.shape) == 2}
    for label, (k, n) in K_N.items():
        assert (n, k) in shapes, label


def test_predict_gemm_is_the_simulators_gemm_cost():
    # SCALE-Sim 3.0 itself gives 204,543 cycles for this GEMM (README); same code path as hwsim gemm
    hw = load_spec("scalesim-os")
    assert predict_gemm(hw, 16, 1536, 4096, "int8") * hw.frequency_hz == pytest.approx(204543)


def test_predict_gemm_streams_what_does_not_fit_from_dram():
    hw = (load_spec("scalesim-os").replace_path("core.scratchpad_bytes", 1 << 20)
          .replace_path("shared_sram_bytes", 0).replace_path("dram_bw_bytes_per_s", 1e9)
          .replace_path("core.matrix.macs_per_pe_per_cycle.int8", 64))
    k, n = 4096, 2048   # 8 MiB of int8 weight, 1 MiB on chip: the plan keeps 1 MiB of it (fractional
    #                     knapsack) and streams the other 7 MiB from DRAM at every use
    assert predict_gemm(hw, 1, k, n, "int8") == pytest.approx((k * n - (1 << 20)) / 1e9, rel=1e-3)
    small = predict_gemm(hw, 1, 256, 1024, "int8")   # 256 KiB: kept on chip after its first use
    assert small < 256 * 1024 / 1e9 / 10


def test_decode_case_graph_is_the_run_it_times():
    run, graph, system, audio_s, traced = decode_case("tiny", 40, 4, "dr")
    timed = run()
    assert [h[0] for h in timed.hyps] == [h[0] for h in traced.hyps]
    assert [h[1] for h in timed.hyps] == pytest.approx([h[1] for h in traced.hyps])
    # the traced graph's search statistics are those of the timed decode, step for step
    assert graph.meta["search"] == timed.stats.summary()
    assert graph.meta["frames"] == 40 and graph.meta["beam"] == 4 and graph.meta["lm_fusion"] == "dr"
    assert audio_s == pytest.approx(40 * system.config.features.frame_shift_s)
    phases = {graph.graph.nodes[i]["op"].phase for i in range(len(graph))}
    assert {"encoder", "prediction", "joint", "lm_ext", "lm_src"} <= phases


def test_resolve_presets_names_a_missing_sibling(tmp_path):
    only = tmp_path / "x.yaml"
    only.write_text(load_spec("host-cpu").name)
    with pytest.raises(UserError, match=r"x-aten.yaml is missing; `hwsim calibrate --out"):
        resolve_presets(only)
    assert set(resolve_presets("host-cpu")) == {"torch", "aten", "numba"}


def test_validate_command_bad_hw_is_one_line(capsys):
    assert main(["validate", "--hw", "no-such-preset"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-preset" in err[0]


def test_validate_calibrate_times_both_in_one_round_and_predicts_from_what_it_wrote(tmp_path, monkeypatch):
    """``validate(calibrate=True)``: the calibration's benchmarks join the cases' round-robin (one
    timer call sequence for both), the presets are written to ``hw`` and the predictions come
    from them. The calibration itself is a stand-in (tests/hwsim/test_calibrate.py's)."""
    import hwsim.calibrate as cal_mod
    from hwsim import validate as val_mod
    from test_calibrate import fake_calibration

    timed: list[str] = []

    class FakeSession:
        def __init__(self, decode=True):
            self.benches = {"probe": (lambda: "probe", "probe()")}

        def callables(self):
            return {"probe": lambda: timed.append("probe")}

        def finish(self, seconds, repeats, stat="min"):
            assert set(seconds) == {"probe"}
            return fake_calibration()

    monkeypatch.setattr(cal_mod, "Session", FakeSession)
    monkeypatch.setattr(val_mod, "gemm_cases", lambda: [Case("aten fp32 8x256x512", "gemm", "aten", "fp32", 8, 256, 512)])
    out = tmp_path / "mine.yaml"
    res = val_mod.validate(out, repeats=1, min_sample_s=0.0, decodes=False, calibrate=True,
                           timer=lambda fn, loops: (fn(), 1e-3)[1])
    assert "probe" in timed                                  # the calibration was timed with the case
    assert res["calibrated_with_cases"] is True
    assert {Path(p).name for p in res["hw"].values()} == {"mine.yaml", "mine-aten.yaml", "mine-numba.yaml"}
    (case,) = res["cases"]
    assert case["measured_s"] == 1e-3
    assert case["predicted_s"] == pytest.approx(predict_gemm(load_spec(tmp_path / "mine-aten.yaml"), 8, 256, 512, "fp32"))


def test_round_robin_keeps_the_minimum_of_the_rounds_and_validate_records_the_median(tmp_path, monkeypatch):
    """Other users' traffic only adds time: ``round_robin`` keeps each bench's minimum over the
    rounds by default (``stat="median"`` the median); ``validate`` reports ``measured_s`` by its
    ``stat`` and the rounds' median and maximum beside it, and a second summary against the medians."""
    import hwsim.calibrate as cal_mod
    from hwsim import validate as val_mod

    script = {"a": iter([0.0, 3.0, 1.0, 2.0]), "b": iter([0.0, 5.0, 5.0, 4.0])}   # warm-up, then 3 rounds

    def timer(fn, loops):
        return next(script[fn()])

    benches = {"a": lambda: "a", "b": lambda: "b"}
    assert cal_mod.round_robin(benches, 3, 0.0, timer) == {"a": 1.0, "b": 4.0}
    with pytest.raises(ValueError, match="unknown sample statistic 'mean'"):
        cal_mod.reduce_samples({"a": [1.0]}, "mean")
    assert cal_mod.reduce_samples({"a": [3.0, 1.0, 2.0]}, "median") == {"a": 2.0}

    monkeypatch.setattr(val_mod, "gemm_cases", lambda: [Case("aten fp32 8x256x512", "gemm", "aten", "fp32", 8, 256, 512)])
    times = iter([1e-3, 4e-3, 1e-3, 2e-3])           # warm-up, then rounds of 4, 1 and 2 ms
    res = val_mod.validate("host-cpu", repeats=3, min_sample_s=0.0, decodes=False,
                           timer=lambda fn, loops: (fn(), next(times))[1])
    (case,) = res["cases"]
    assert (res["stat"], res["repeats"]) == ("min", 3)
    assert (case["measured_s"], case["measured_median_s"], case["measured_max_s"]) == (1e-3, 2e-3, 4e-3)
    assert case["ratio"] == pytest.approx(case["predicted_s"] / 1e-3)
    assert res["summary_median"]["median_abs_err"] == pytest.approx(abs(case["predicted_s"] / 2e-3 - 1))
