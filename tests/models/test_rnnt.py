"""RNN-T and LM modules: training APIs agree with step APIs; frame stacking; time reduction."""

from __future__ import annotations

import torch

from models.rnnt import reduce_time, stack_frames


def test_stack_frames_layout():
    x = torch.arange(2 * 7 * 3, dtype=torch.float32).view(2, 7, 3)
    y = stack_frames(x, 2, 2)
    assert y.shape == (2, 3, 6)
    assert torch.equal(y[1, 2], torch.cat([x[1, 4], x[1, 5]]))
    z = stack_frames(x, 3, 1)
    assert z.shape == (2, 5, 9) and torch.equal(z[0, 4], torch.cat([x[0, 4], x[0, 5], x[0, 6]]))


def test_reduce_time_methods():
    x = torch.arange(5 * 1 * 2, dtype=torch.float32).view(5, 1, 2)
    assert torch.equal(reduce_time(x, 2, "stride"), x[[0, 2, 4]])
    assert torch.equal(reduce_time(x, 2, "concat")[1, 0], torch.cat([x[2, 0], x[3, 0]]))
    assert torch.equal(reduce_time(x, 2, "mean")[0], (x[0] + x[1]) / 2)


def test_encoder_output_frames(tiny):
    enc = tiny.rnnt.encoder
    for t in (4, 9, 40, 41):
        with torch.no_grad():
            out = enc(torch.randn(1, t, tiny.config.features.input_dim))
        assert out.shape[1] == enc.output_frames(t)


def test_prediction_sequence_equals_steps(tiny):
    pred = tiny.rnnt.prediction
    labels = torch.tensor([[3, 5, 7], [1, 1, 2]])
    with torch.no_grad():
        seq = pred.forward_sequence(labels)
        out, state = pred(torch.zeros(2, dtype=torch.long))
        outs = [out]
        for u in range(3):
            out, state = pred(labels[:, u], state)
            outs.append(out)
    torch.testing.assert_close(seq, torch.stack(outs, 1))


def test_joint_projected_and_lattice(tiny):
    r = tiny.rnnt
    with torch.no_grad():
        lattice = r(torch.randn(2, 12, tiny.config.features.input_dim), torch.tensor([[1, 2], [3, 4]]))
        assert lattice.shape == (2, 3, 3, tiny.config.num_labels)
        torch.testing.assert_close(lattice.exp().sum(-1), torch.ones(2, 3, 3))
        e, p = torch.randn(4, 32), torch.randn(4, 16)
        torch.testing.assert_close(r.joint(e, p), r.joint(r.joint.enc_proj(e), r.joint.pred_proj(p), projected=True))


def test_lm_sequence_step_and_score(tiny):
    lm = tiny.lm_ext
    seq = (4, 2, 9)
    with torch.no_grad():
        batch = lm.forward_sequence(torch.tensor([(0,) + seq]))[0]
        state, manual = None, 0.0
        for u, y in enumerate((0,) + seq):
            logp, state = lm(torch.tensor([y]), state)
            torch.testing.assert_close(logp[0], batch[u])
            manual += logp[0, seq[u] if u < len(seq) else 0].item()
        scores = lm.score([seq, (5,)])
    assert abs(scores[0].item() - manual) < 1e-4  # includes </s> = label 0 after the last label
    assert scores.shape == (2,)
