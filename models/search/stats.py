"""Search statistics: per step, how much work the search did and in which batch shapes.

Recorded by every search in ``models.search``; the analytic graph builder replays them at paper
scale, so each field is the batch (row count) of one network call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import pandas as pd


@dataclass
class StepStats:
    """One search step (one joint call).

    Attributes:
        step: search step index (the ``step_scope`` value of the step's ops).
        frame: encoder frame scored (greedy/TSD); for ALSD, whose hyps sit at several frames,
            the latest of them: the last encoder frame the step reads (streaming releases the
            step when that frame is there: ``workloads.streaming``).
        substep: label expansions already made at this frame (greedy/TSD); 0 for ALSD.
        hyps: hypotheses alive at the start of the step (all of them are scored).
        joint_evals: rows of the step's joint call.
        pred_evals: rows of the prediction-network call (new prefixes; 0 if no call).
        lm_ext_evals, lm_src_evals: rows of each LM call (0 without fusion).
        pred_calls: 0 or 1. lm_calls: 0 or 1 (both LMs are called together).
        merges: duplicate hypotheses merged with logaddexp after selection.
        finals: hypotheses that became final at this step (ALSD).
        capped: hypotheses at U_max whose label extensions were masked (ALSD).
    """

    step: int
    frame: int = -1
    substep: int = 0
    hyps: int = 0
    joint_evals: int = 0
    pred_evals: int = 0
    lm_ext_evals: int = 0
    lm_src_evals: int = 0
    pred_calls: int = 0
    lm_calls: int = 0
    merges: int = 0
    finals: int = 0
    capped: int = 0


STEP_FIELDS = tuple(f.name for f in fields(StepStats))
_SUMMED = ("hyps", "joint_evals", "pred_evals", "lm_ext_evals", "lm_src_evals", "pred_calls",
           "lm_calls", "merges", "finals", "capped")


@dataclass
class SearchStats:
    """Statistics of one decode.

    Attributes:
        method, beam, lm_fusion: the search settings.
        frames: encoder output frames. labels: length of the best hypothesis.
        steps: one ``StepStats`` per search step, in order.
    """

    method: str
    beam: int
    lm_fusion: str
    frames: int = 0
    labels: int = 0
    steps: list[StepStats] = field(default_factory=list)

    def add_step(self, **values: int) -> StepStats:
        row = StepStats(**values)
        self.steps.append(row)
        return row

    def totals(self) -> dict[str, int]:
        """Sums over steps of the per-step counters."""
        return {k: sum(getattr(s, k) for s in self.steps) for k in _SUMMED}

    def summary(self) -> dict:
        """Whole-decode numbers: settings, ``frames``, ``labels``, ``search_steps`` and totals."""
        return {"method": self.method, "beam": self.beam, "lm_fusion": self.lm_fusion,
                "frames": self.frames, "labels": self.labels, "search_steps": len(self.steps),
                **self.totals()}

    def to_frame(self) -> pd.DataFrame:
        """One row per step, columns = ``StepStats`` fields."""
        return pd.DataFrame([asdict(s) for s in self.steps], columns=list(STEP_FIELDS))

    def to_dict(self, columns: bool = False) -> dict:
        """JSON-able dict; steps as a list of dicts, or with ``columns`` as one list per
        ``StepStats`` field (compact: what a traced graph's meta keeps)."""
        steps = [asdict(s) for s in self.steps]
        if columns:
            steps = {f: [getattr(s, f) for s in self.steps] for f in STEP_FIELDS}
        return {"method": self.method, "beam": self.beam, "lm_fusion": self.lm_fusion,
                "frames": self.frames, "labels": self.labels, "steps": steps}

    @classmethod
    def from_dict(cls, data: dict) -> "SearchStats":
        unknown = set(data) - {"method", "beam", "lm_fusion", "frames", "labels", "steps"}
        if unknown:
            raise ValueError(f"unknown SearchStats keys {sorted(unknown)}")
        steps = data.get("steps", [])
        if isinstance(steps, dict):       # ``to_dict(columns=True)``
            unknown = set(steps) - set(STEP_FIELDS)
            if unknown:
                raise ValueError(f"unknown StepStats fields {sorted(unknown)}")
            n = len(next(iter(steps.values()), []))
            steps = [{f: int(v[i]) for f, v in steps.items()} for i in range(n)]
        steps = [StepStats(**s) for s in steps]
        return cls(data["method"], int(data["beam"]), data["lm_fusion"], int(data.get("frames", 0)),
                   int(data.get("labels", 0)), steps)
