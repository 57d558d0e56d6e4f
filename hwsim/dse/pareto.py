"""Pareto fronts of design points over two or three objectives."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

SENSES = ("min", "max")


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``values`` (n x d), every objective minimized.

    Row ``a`` dominates row ``b`` if ``a <= b`` in every objective and ``a < b`` in at least one.
    Rows equal in every objective do not dominate each other, so duplicates on the front are all
    kept.

    Returns:
        Boolean mask of length n.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    # In lexicographic order no row can be dominated by a later one, so one pass against the
    # front found so far suffices: O(n * front size).
    order = np.lexsort(values.T[::-1])
    front = np.empty((0, values.shape[1]))
    for i in order:
        v = values[i]
        if len(front):
            le = np.all(front <= v, axis=1)
            lt = np.any(front < v, axis=1)
            if np.any(le & lt):
                continue
        front = np.vstack([front, v])
        mask[i] = True
    return mask


def pareto(df: pd.DataFrame, objectives: Mapping[str, str], only_ok: bool = True) -> pd.DataFrame:
    """The non-dominated rows of ``df``.

    Args:
        df: design points (e.g. ``hwsim.dse.load(DIR)``).
        objectives: column -> ``"min"`` or ``"max"``, two or three of them, e.g.
            ``{"rtf": "min", "onchip_bytes": "min"}``, or with silicon area as the cost axis
            ``{"rtf": "min", "area_mm2": "min"}`` (``hwsim.area``; empty for a spec without an
            ``area`` section, so such points are left out).
        only_ok: consider only rows with ``status == "ok"`` (when the column exists).

    Returns:
        The front's rows (all columns), sorted by the objectives in the given order. Rows with a
        missing objective value are never on the front.

    Raises:
        ValueError: fewer than 2 or more than 3 objectives, an unknown column or sense.
    """
    if not 2 <= len(objectives) <= 3:
        raise ValueError(f"pareto needs 2 or 3 objectives, got {list(objectives)}")
    for col, sense in objectives.items():
        if col not in df.columns:
            raise ValueError(f"pareto: unknown column {col!r}; columns: {', '.join(map(str, df.columns))}")
        if sense not in SENSES:
            raise ValueError(f"pareto: objective {col!r} must be 'min' or 'max', got {sense!r}")
    cand = df
    if only_ok and "status" in df.columns:
        cand = cand[cand["status"] == "ok"]
    cols = list(objectives)
    cand = cand.dropna(subset=cols)
    values = np.column_stack([
        cand[c].to_numpy(dtype=float) * (1.0 if objectives[c] == "min" else -1.0) for c in cols])
    front = cand[pareto_mask(values)]
    return front.sort_values(cols, ascending=[objectives[c] == "min" for c in cols], kind="stable")
