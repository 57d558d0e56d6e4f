"""hwsim: cost and schedule RNN-T + LM-fusion op graphs on parametric accelerators.

Public API:
    load_spec, presets, AcceleratorSpec      accelerator specs (hwsim.spec)
    cost_gemm, CostError                     GEMM cost, single or vectorized (hwsim.cost)
    simulate, SimResult                      whole-graph simulation (hwsim.simulate)
    compression, Compression                 model compression under a policy (hwsim.compression)

``hwsim.simulate`` and ``hwsim.compression`` are the functions (their modules stay reachable as
``sys.modules["hwsim.simulate"]`` and through ``from hwsim.simulate import ...``).
"""

from __future__ import annotations

from hwsim.compression import Compression
from hwsim.compression import compression as _compression_fn
from hwsim.cost import CostError
from hwsim.gemm import cost_gemm
from hwsim.simulate import SimResult
from hwsim.simulate import simulate as _simulate_fn
from hwsim.spec import AcceleratorSpec, load_spec, presets

# The submodule imports above bind the package attributes ``simulate`` and ``compression`` to
# the modules; the public names are the functions.
simulate = _simulate_fn
compression = _compression_fn

__all__ = ["AcceleratorSpec", "load_spec", "presets", "cost_gemm", "CostError", "simulate",
           "SimResult", "compression", "Compression"]
