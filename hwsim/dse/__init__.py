"""Design-space exploration: sweeps of models, precisions, search settings and accelerators.

Typical use::

    from hwsim import dse
    sweep = dse.load_sweep("workloads/sweeps/rapid4_dse.yaml")
    dse.run_sweep(sweep, "runs/rapid4_dse")                      # resumable; local processes
    df = dse.load("runs/rapid4_dse")                             # one row per design point
    front = dse.pareto(df, {"rtf": "min", "onchip_bytes": "min"})

Modules: ``sweep`` (definition, planning, keys), ``loading`` (strict YAML, validation), ``constraints`` (safe expressions),
``executors`` (in-process, local processes, Dask), ``store`` (Parquet parts), ``run`` (the driver),
``evaluate`` (the simulator as ``evaluate(point) -> dict``), ``pareto`` and ``analysis``.
"""

from hwsim.dse.analysis import aliases, best_points, param_columns, sensitivity, varied_columns
from hwsim.dse.executors import DaskExecutor, InlineExecutor, LocalExecutor, run_chunk
from hwsim.dse.pareto import pareto, pareto_mask
from hwsim.dse.run import SweepIncomplete, SweepSummary, run_sweep
from hwsim.dse.store import load
from hwsim.dse.loading import load_sweep, loads_sweep
from hwsim.dse.sweep import Plan, PlannedPoint, Sweep, point_key

__all__ = [
    "DaskExecutor", "InlineExecutor", "aliases", "LocalExecutor", "Plan", "PlannedPoint", "Sweep",
    "SweepIncomplete", "SweepSummary", "best_points", "load", "load_sweep", "loads_sweep",
    "param_columns", "pareto", "pareto_mask", "point_key", "run_chunk", "run_sweep",
    "sensitivity", "varied_columns",
]
