"""Parametric search statistics: ``SearchStats`` for a paper-scale decode without running one.

The work of a search depends on the data (how many labels are emitted, how many hypotheses
share prefixes). For paper-scale cost estimates this module replaces a real decode with a small,
stated model whose inputs are the audio length, the beam and a label rate:

- ``T`` encoder output frames follow from the audio length and the front end (exact).
- ``U = labels_per_s * audio_s`` labels are emitted. Default ``LABELS_PER_S = 14``
  [assumption]: conversational English (Switchboard) runs at about 2.5-3 words/s, i.e. about
  12-15 characters/s counting spaces at 4-5 characters per word; we take the middle.
- Hypotheses alive: 1 at the first step (the empty prefix), ``beam`` afterwards [assumption: the
  beam fills after one step, since every step offers N x V >> beam candidates].
- New prefixes per step (prediction-net rows, and LM rows under DR fusion): a fraction
  ``expansion_fraction`` of the hypotheses scored; default ``U / (T + U)`` for ALSD, the share of
  alignment steps at which a path emits a label [assumption: alternatives in the beam emit labels
  at the same rate as the best path]. Fractional counts are spread over the steps so that totals
  are the rounded expected values.
- ALSD runs ``T + U`` steps (the best path's alignment length; early stopping and the U_max cap
  are not modelled), and the final ``beam`` hypotheses end at the last step. The latest frame a
  step reads (``StepStats.frame``, what streaming waits for) is the best path's at that step
  rounded up, ``ceil(i T / (T + U))`` [assumption: the beam's hyps keep pace with the best path;
  one with fewer labels sits further ahead].
- Merged duplicates (``merges_per_step``, default 0 [assumption]) only add one scalar
  ``logaddexp`` each; they do not change the network work.
- TSD: per frame, sub-step 0 scores all hyps, sub-step v >= 1 the ``expansion_fraction`` of the
  previous sub-step's survivors that emitted a label, up to ``max_symbols_per_frame`` (default
  fraction ``U / (T + U)``). Greedy: one step per frame plus one per label, labels spread evenly.

Calibrated on nothing but these assumptions; compare with ``SearchStats`` of real decodes
(``workloads.trace``) when a trained model and real audio are at hand.
"""

from __future__ import annotations


from models.config import ModelConfig, encoder_frames  # noqa: F401  (encoder_frames: re-exported)

#: Characters (labels) per second of conversational English speech [assumption, see module doc].
LABELS_PER_S = 14.0


def input_frames(config: ModelConfig, audio_s: float) -> int:
    """Feature frames (one per ``frame_shift_s``) covering ``audio_s`` seconds."""
    if not audio_s > 0:
        raise ValueError(f"audio_s must be > 0, got {audio_s}")
    return max(config.features.stack, round(audio_s / config.features.frame_shift_s))


class _Spread:
    """Integer parts of a running sum of fractional counts (totals = rounded expectation)."""

    def __init__(self) -> None:
        self.acc = 0.0
        self.done = 0

    def take(self, x: float) -> int:
        self.acc += x
        n = int(round(self.acc)) - self.done
        self.done += n
        return n


def parametric_stats(config: ModelConfig, audio_s: float, beam: int, lm_fusion: str,
                     method: str = "alsd", labels_per_s: float = LABELS_PER_S,
                     expansion_fraction: float | None = None, merges_per_step: float = 0.0,
                     max_symbols_per_frame: int = 3):
    """``SearchStats`` of a modelled decode of ``audio_s`` seconds (see the module docstring).

    Args:
        config: the model (frame rate, labels).
        audio_s: seconds of audio.
        beam: beam width (1 for greedy).
        lm_fusion: ``none`` or ``dr`` (LM rows = prediction rows under ``dr``).
        method: ``alsd``, ``tsd`` or ``greedy``.
        labels_per_s: emitted labels per second of audio.
        expansion_fraction: share of scored hyps that are new prefixes; None = U / (T + U).
        merges_per_step: duplicate merges per step (scalar logaddexp each).
        max_symbols_per_frame: TSD label expansions per frame (``SearchConfig`` default 3).

    Returns:
        ``models.search.SearchStats`` with one ``StepStats`` per step.
    """
    from models.search.stats import SearchStats

    if lm_fusion not in ("none", "dr"):
        raise ValueError(f"lm_fusion must be 'none' or 'dr', got {lm_fusion!r}")
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if labels_per_s < 0:
        raise ValueError(f"labels_per_s must be >= 0, got {labels_per_s}")
    T = encoder_frames(config, input_frames(config, audio_s))
    U = min(int(round(labels_per_s * audio_s)), T * max_symbols_per_frame)
    frac = U / (T + U) if expansion_fraction is None else float(expansion_fraction)
    if not 0 <= frac <= 1:
        raise ValueError(f"expansion_fraction must be in [0, 1], got {frac}")
    dr = lm_fusion == "dr"
    width = 1 if method == "greedy" else beam
    stats = SearchStats(method, width, lm_fusion, frames=T, labels=U)
    merges = _Spread()

    def step(index: int, hyps: int, new: int, **extra) -> None:
        stats.add_step(step=index, hyps=hyps, joint_evals=hyps, pred_evals=new,
                       pred_calls=int(new > 0), lm_ext_evals=new if dr else 0,
                       lm_src_evals=new if dr else 0, lm_calls=int(dr and new > 0),
                       merges=min(merges.take(merges_per_step), max(0, min(beam, hyps) - 1)),
                       **extra)

    if method == "alsd":
        spread = _Spread()
        n_steps = T + U
        for i in range(n_steps):
            hyps = 1 if i == 0 else beam
            new = 1 if i == 0 else min(hyps, spread.take(frac * hyps))  # step 0: <sos> row
            step(i, hyps, new, frame=min(T - 1, -(-i * T // n_steps)),
                 finals=beam if i == n_steps - 1 else 0)
    elif method == "tsd":
        spread, index = _Spread(), 0
        for t in range(T):
            hyps = 1 if t == 0 else beam
            for v in range(max_symbols_per_frame + 1):
                new = 1 if (t == 0 and v == 0) else (0 if v == 0 else hyps)
                step(index, hyps, new, frame=t, substep=v)
                index += 1
                hyps = min(beam, spread.take(frac * beam)) if v < max_symbols_per_frame else 0
                if hyps == 0:
                    break
    elif method == "greedy":
        spread, index = _Spread(), 0
        for t in range(T):
            labels = min(max_symbols_per_frame, spread.take(U / T))
            for v in range(labels + 1):
                # the first step scores <sos>; after a label, the new prefix needs a row
                new = 1 if index == 0 or v > 0 else 0
                step(index, 1, new, frame=t, substep=v)
                index += 1
    else:
        raise ValueError(f"method must be alsd, tsd or greedy, got {method!r}")
    return stats
