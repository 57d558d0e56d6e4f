"""The tracer against independent counts: FlopCounterMode, closed-form LSTM MACs, search stats."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import models
import workloads
from models.config import (EncoderConfig, FeatureConfig, JointConfig, LMConfig, ModelConfig,
                           PredictionConfig)
from models.features import random_features

#: Hand-picked: stack 3 / stride 2 (the stacking reshape must copy), bidirectional, time
#: reduction by concatenation after layer 1 (layer 1 input = 2 * 2 * hidden), 2-layer LMs.
HAND = ModelConfig(
    name="hand", num_labels=11, alphabet="abcdefghij",
    features=FeatureConfig(input_dim=6, stack=3, stride=2),
    encoder=EncoderConfig(layers=3, hidden=5, bidirectional=True, time_reduction=2,
                          time_reduction_after=1, time_reduction_method="concat"),
    prediction=PredictionConfig(embed_dim=4, layers=2, hidden=7),
    joint=JointConfig(dim=6),
    lm_ext=LMConfig(embed_dim=3, layers=2, hidden=8),
    lm_src=LMConfig(embed_dim=3, layers=1, hidden=5),
)


def _phase(graph, phase, field="macs"):
    return sum(getattr(o, field) for o in graph.ops if o.phase == phase)


def test_gemm_macs_equal_flop_counter(traced):
    _, feats, graph, _ = traced("tiny", 60, 4, "dr")
    system = models.build_system("tiny", seed=0)  # same weights, a separate instance:
    for p in system.parameters():  # FlopCounterMode's module tracker hooks autograd, which
        p.requires_grad_(False)    # inference mode forbids on parameters that require grad
    with FlopCounterMode(display=False) as counter:
        models.decode(system, feats, beam=4, lm_fusion="dr")
    assert graph.totals()["macs"] * 2 == counter.get_total_flops()
    assert graph.totals()["macs"] > 0
    assert all(o.macs == 0 for o in graph.ops if o.kind != "gemm")


def test_closed_form_macs_of_hand_config():
    torch.manual_seed(0)
    system = models.build_system(HAND)
    frames = 41
    graph, result = workloads.trace(system, random_features(HAND, frames), beam=3, lm_fusion="dr")
    stats = result.stats
    H, Enc, J, V = 5, 10, 6, 11
    # frames: (41 - 3) // 2 + 1 = 20 stacked; layers 1, 2 run at 20 // 2 = 10 after concat
    layers = [(20, 18), (10, 20), (10, 10)]  # (T, input width): 3*6, 2*(2*5), 2*5
    encoder = sum(2 * T * 4 * H * (I + H) for T, I in layers)
    assert stats.frames == 10
    assert _phase(graph, "encoder") == encoder
    steps = stats.steps
    M = [s.pred_evals for s in steps]
    N = [s.joint_evals for s in steps]
    L = [s.lm_ext_evals for s in steps]
    assert _phase(graph, "prediction") == sum(m * 4 * 7 * ((4 + 7) + (7 + 7)) for m in M)
    assert _phase(graph, "joint") == 10 * Enc * J + sum(n * J * V for n in N) + sum(m * 7 * J for m in M)
    assert _phase(graph, "lm_ext") == sum(x * (4 * 8 * (3 + 8) + 4 * 8 * 16 + 8 * V) for x in L)
    assert _phase(graph, "lm_src") == sum(x * (4 * 5 * (3 + 5) + 5 * V) for x in L)
    # ... and the analytic builder reproduces every op of this unusual config
    built = workloads.rnnt_graph(HAND, stats, frames)
    assert list(built.ops) == list(graph.ops)


@pytest.mark.parametrize("method", ["alsd", "tsd", "greedy"])
def test_lm_ops_only_on_nonblank_expansions(traced, method):
    system, _, graph, result = traced("tiny", 60, 1 if method == "greedy" else 4, "dr", method)
    stats = result.stats
    lm_steps = {s.step for s in stats.steps if s.lm_ext_evals}
    for phase, lm in (("lm_ext", system.config.lm_ext), ("lm_src", system.config.lm_src)):
        ops = [o for o in graph.ops if o.phase == phase]
        assert {o.step for o in ops} == lm_steps
        # per LM call: embedding, per layer 2 GEMMs + 9 cell ops, output GEMM, log_softmax
        assert len(ops) == stats.totals()["lm_calls"] * (1 + 11 * lm.layers + 2)
        rows = sum(o.out_shapes[0][0] for o in ops if o.op == "embedding")
        assert rows == stats.totals()[f"{phase}_evals"]
    # the LM rows are exactly the prediction network's new prefixes (non-blank expansions)
    assert stats.totals()["lm_ext_evals"] == stats.totals()["pred_evals"]


def test_no_lm_ops_without_fusion(traced):
    _, _, graph, result = traced("tiny", 60, 4, "none")
    assert not [o for o in graph.ops if o.phase.startswith("lm_")]
    assert result.stats.totals()["lm_ext_evals"] == 0


def test_phases_modules_steps_and_weights(traced):
    system, _, graph, result = traced("tiny", 60, 4, "dr")
    names = dict(system.named_parameters())
    for o in graph.ops:
        if o.weight:
            assert o.weight_bytes == names[o.weight].numel() * 4
            if o.weight.startswith("lm_"):
                assert o.phase == o.weight.split(".")[0]
        if o.phase == "encoder":
            assert o.module.startswith("rnnt.encoder")
    gemms = [o for o in graph.ops if o.kind == "gemm"]
    assert all(o.weight for o in gemms)  # every GEMM multiplies by a parameter (incl. W^T views)
    # every encoder frame of every layer/direction has exactly one recurrent GEMM
    rec = [o for o in gemms if o.weight.endswith("weight_hh") and o.phase == "encoder"]
    assert len(rec) == 2 * (30 + 15)  # tiny: 60 -> 30 stacked frames (layer 0), 15 after reduction
    steps = {s.step for s in result.stats.steps}
    assert {o.step for o in graph.ops if o.phase == "joint" and o.step >= 0} == steps
    assert graph.unknown_ops() == {}


def test_hooks_removed_after_error(traced):
    system, feats, _, _ = traced("tiny", 60, 4, "dr")
    with pytest.raises(ValueError):
        workloads.trace(system, feats[:, :3], beam=2)  # wrong feature width
    for _, m in system.named_modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_recorder_columns_by_hand():
    # y = linear(x); z = y*y; w = z + y; out = w*w + z: five ops, three templates (the second mul
    # and add repeat the first ones' shapes), producers sorted and distinct (y*y reads op 0 twice)
    from workloads.tracer import record

    lin = torch.nn.Linear(3, 3)
    x = torch.ones(2, 3)

    def fn():
        y = lin(x)
        z = y * y
        w = z + y
        return w * w + z

    with torch.inference_mode():
        graph, _ = record(lin, fn, step_fn=lambda: 7)
    assert [o.op for o in graph.ops] == ["linear", "mul", "add", "mul", "add"]
    assert graph.code.tolist() == [0, 1, 2, 1, 2] and len(graph.templates) == 3
    assert graph.step.tolist() == [7] * 5
    assert [graph.deps(i) for i in range(5)] == [[], [0], [0, 1], [2], [1, 3]]
    first = graph.ops[0]
    assert (first.weight, first.weight_bytes, first.macs) == ("weight", 9 * 4, 2 * 3 * 3)


def test_recorder_keeps_a_few_bytes_per_op():
    """Python memory the recorder keeps grows by < 100 bytes per op (columns and the storage ->
    producer map; a tuple per op, as it kept before, was about 700), measured with tracemalloc
    between two decode lengths so that what does not grow with the ops cancels."""
    import tracemalloc

    from models.hooks import current_step
    from workloads.tracer import ModuleTracker, OpRecorder, parameter_map

    system = models.build_system("tiny", seed=0)

    def retained(frames: int) -> tuple[int, int]:
        feats = random_features(system.config, frames, seed=0)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            rec = OpRecorder(parameter_map(system), current_step)
            with torch.inference_mode(), ModuleTracker(system, rec), rec:
                result = models.decode(system, feats, beam=4, lm_fusion="dr")
            assert result.text is not None
            return tracemalloc.get_traced_memory()[0] - base, len(rec.cols)
        finally:
            tracemalloc.stop()

    (m1, n1), (m2, n2) = retained(100), retained(400)
    assert n2 > 3 * n1
    assert (m2 - m1) / (n2 - n1) < 100
