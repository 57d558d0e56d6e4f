"""Questions asked of a sweep's results: which columns were varied, what matters, what is best."""

from __future__ import annotations

import pandas as pd

from hwsim.dse.sweep import HW_PREFIX, POINT_FIELDS, SERVE_PREFIX


def param_columns(df: pd.DataFrame) -> list[str]:
    """The point-parameter columns of a results table (``POINT_FIELDS``, ``hw.*``, ``serve.*``)."""
    return [c for c in df.columns if c in POINT_FIELDS or str(c).startswith((HW_PREFIX, SERVE_PREFIX))]


def varied_columns(df: pd.DataFrame) -> list[str]:
    """Parameter columns that take more than one value in ``df``."""
    return [c for c in param_columns(df) if df[c].nunique(dropna=False) > 1]


def aliases(df: pd.DataFrame, columns: list[str] | None = None) -> dict[str, list[str]]:
    """Varied columns grouped by the one-to-one relation (e.g. the members of a ``vary`` group).

    Returns:
        First column of each set -> the later columns whose values map one-to-one onto it (an
        array's ``cols`` and MAC rates moving with its ``rows``). Independent columns map to [].
    """
    columns = varied_columns(df) if columns is None else columns
    out: dict[str, list[str]] = {}
    for c in columns:
        for k in out:
            if (df.groupby(k, dropna=False)[c].nunique(dropna=False).max() == 1
                    and df.groupby(c, dropna=False)[k].nunique(dropna=False).max() == 1):
                out[k].append(c)
                break
        else:
            out[c] = []
    return out


def sensitivity(df: pd.DataFrame, metric: str = "rtf", params: list[str] | None = None) -> pd.DataFrame:
    """How much ``metric`` moves with each varied parameter.

    For each parameter and each of its values: the median, min and max of ``metric`` over all ok
    points with that value (the other parameters varying freely).

    Returns:
        Tidy table with columns ``param``, ``value``, ``points``, ``median``, ``min``, ``max``, and
        ``range_x`` (per parameter: largest / smallest median, i.e. how many times the typical
        metric changes across the parameter's values), ordered by ``range_x`` descending.
    """
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    params = varied_columns(ok) if params is None else params
    rows = []
    for p in params:
        g = ok.groupby(p, dropna=False)[metric].agg(["count", "median", "min", "max"]).reset_index()
        lo, hi = g["median"].min(), g["median"].max()
        range_x = hi / lo if lo > 0 else float("inf")
        for _, r in g.iterrows():
            rows.append({"param": p, "value": r[p], "points": int(r["count"]), "median": r["median"],
                         "min": r["min"], "max": r["max"], "range_x": range_x})
    out = pd.DataFrame(rows, columns=["param", "value", "points", "median", "min", "max", "range_x"])
    if out.empty:
        return out
    order = out.groupby("param", sort=False)["range_x"].first().sort_values(ascending=False).index
    out["param"] = pd.Categorical(out["param"], categories=list(order), ordered=True)
    out = out.sort_values(["param"], kind="stable").reset_index(drop=True)
    out["param"] = out["param"].astype(str)
    return out


def best_points(df: pd.DataFrame, metric: str = "rtf", n: int = 10, ascending: bool = True) -> pd.DataFrame:
    """The ``n`` best ok points by ``metric`` (smallest first unless ``ascending`` is false)."""
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    return ok.sort_values(metric, ascending=ascending, kind="stable").head(n)
