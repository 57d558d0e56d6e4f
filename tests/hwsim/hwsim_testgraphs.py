"""Hand-made op graphs for hwsim tests (no workloads builder needed)."""

from __future__ import annotations

from pathlib import Path

from models.config import ModelConfig
from workloads.graph import Op, OpGraph

DATA = Path(__file__).parent / "data"
TINY_HW = DATA / "tiny_hw.yaml"


def gemm(phase, module, m, k, n, weight="", step=-1):
    return Op("addmm", "gemm", phase, step, module, macs=m * k * n, flops=2 * m * k * n,
              bytes_read=4 * (m * k + k * n), bytes_written=4 * m * n, weight=weight,
              weight_bytes=4 * k * n if weight else 0, m=m, k=k, n=n)


def unary(name, kind, phase, module, elems, step=-1):
    return Op(name, kind, phase, step, module, flops=elems, bytes_read=4 * elems,
              bytes_written=4 * elems, elems=elems)


def two_module_graph() -> OpGraph:
    """m.a (joint): a 4x4x4 GEMM whose 4x4 weight is used once, then a sigmoid of 100 elements on
    its output; m.b (lm_ext): an independent 8x8x8 GEMM without a weight. On ``TINY_HW`` at
    fp16 (tests/hwsim/test_roofline.py derives the times): the GEMM 0..430 ns on core 0 (its
    weight streams once), the sigmoid 430..490 ns, the 8x8x8 GEMM 0..74 ns on core 1."""
    g = OpGraph()
    a = g.add(gemm("joint", "m.a", 4, 4, 4, "m.a.weight"))
    g.add(unary("sigmoid", "nonlinear", "joint", "m.a", 100), [a])
    g.add(gemm("lm_ext", "m.b", 8, 8, 8))
    return g


def _lstm_step(g, phase, module, B, H, t, x_dep, h_dep):
    """Recurrent GEMM + the cell (4 nonlinear, 3 mul, 1 add, tanh) for one step of one layer."""
    deps = [d for d in (x_dep, h_dep) if d is not None]
    gates = g.add(gemm(phase, module, B, H, 4 * H, f"{module}.weight_hh", t), deps)
    acts = [g.add(unary(nm, "nonlinear", phase, module, B * H, t), [gates])
            for nm in ("sigmoid", "sigmoid", "tanh", "sigmoid")]
    fc = g.add(unary("mul", "eltwise", phase, module, B * H, t), [acts[1]])
    ig = g.add(unary("mul", "eltwise", phase, module, B * H, t), [acts[0], acts[2]])
    c = g.add(unary("add", "eltwise", phase, module, B * H, t), [fc, ig])
    tc = g.add(unary("tanh", "nonlinear", phase, module, B * H, t), [c])
    return g.add(unary("mul", "eltwise", phase, module, B * H, t), [acts[3], tc])


def lstm_decode_graph(cfg: ModelConfig, frames: int = 8, steps: int = 6, beam: int = 4,
                      lm: bool = True) -> OpGraph:
    """An LSTM decode resembling the real one: bidirectional encoder (input GEMM batched over
    frames, recurrent GEMM per frame), then per search step prediction net, joint and (with
    ``lm``) both LMs on ``beam`` hypotheses, and a topk. Weight names follow models.params."""
    g = OpGraph(meta={"model": cfg.name})
    enc = cfg.encoder
    H = enc.hidden
    dirs = ("fwd", "bwd") if enc.bidirectional else ("fwd",)
    layer_in = None
    I = cfg.encoder_input_dim
    for layer in range(enc.layers):
        outs = []
        for d in dirs:
            mod = f"rnnt.encoder.layers.{layer}.{d}"
            xp = g.add(gemm("encoder", mod, frames, I, 4 * H, f"{mod}.weight_ih"),
                       [layer_in] if layer_in is not None else [])
            h = None
            for t in range(frames):
                h = _lstm_step(g, "encoder", mod, 1, H, t, xp, h)
            outs.append(h)
        layer_in = g.add(Op("cat", "move", "encoder", -1, "rnnt.encoder", elems=frames * H * len(dirs),
                            bytes_read=4 * frames * H * len(dirs), bytes_written=4 * frames * H * len(dirs)),
                         outs)
        I = H * len(dirs)
    enc_out = g.add(gemm("joint", "rnnt.joint.enc_proj", frames, I, cfg.joint.dim,
                         "rnnt.joint.enc_proj.weight"), [layer_in])
    V = cfg.num_labels
    sel = None
    states = {}
    for u in range(steps):
        nets = [("prediction", "rnnt.prediction", cfg.prediction)]
        if lm:
            nets += [("lm_ext", "lm_ext", cfg.lm_ext), ("lm_src", "lm_src", cfg.lm_src)]
        outs = {}
        for phase, prefix, net in nets:
            emb_mod = f"{prefix}.embedding"
            x = g.add(Op("embedding", "move", phase, u, emb_mod, elems=beam * net.embed_dim,
                         bytes_read=4 * beam * net.embed_dim, bytes_written=4 * beam * net.embed_dim,
                         weight=f"{emb_mod}.weight"), [sel] if sel is not None else [])
            in_dim = net.embed_dim
            for layer in range(net.layers):
                mod = f"{prefix}.layers.{layer}"
                xi = g.add(gemm(phase, mod, beam, in_dim, 4 * net.hidden, f"{mod}.weight_ih", u), [x])
                x = _lstm_step(g, phase, mod, beam, net.hidden, u, xi, states.get(mod))
                states[mod] = x
                in_dim = net.hidden
            if prefix != "rnnt.prediction":
                logits = g.add(gemm(phase, f"{prefix}.out", beam, net.hidden, V, f"{prefix}.out.weight", u), [x])
                x = g.add(unary("log_softmax", "nonlinear", phase, f"{prefix}.out", beam * V, u), [logits])
            outs[phase] = x
        pp = g.add(gemm("joint", "rnnt.joint.pred_proj", beam, cfg.prediction.hidden, cfg.joint.dim,
                        "rnnt.joint.pred_proj.weight", u), [outs["prediction"]])
        s = g.add(unary("add", "eltwise", "joint", "rnnt.joint", beam * cfg.joint.dim, u), [pp, enc_out])
        t = g.add(unary("tanh", "nonlinear", "joint", "rnnt.joint", beam * cfg.joint.dim, u), [s])
        lo = g.add(gemm("joint", "rnnt.joint.out", beam, cfg.joint.dim, V, "rnnt.joint.out.weight", u), [t])
        lp = g.add(unary("log_softmax", "nonlinear", "joint", "rnnt.joint", beam * V, u), [lo])
        score = g.add(unary("add", "eltwise", "search", "", beam * V, u),
                      [lp] + [outs[p] for p in ("lm_ext", "lm_src") if p in outs])
        sel = g.add(Op("topk", "select", "search", u, "", flops=beam * V, bytes_read=4 * beam * V,
                       bytes_written=12 * beam, elems=beam), [score])
    return g
