"""The import flow points down (models <- workloads <- hwsim): simulating needs no torch."""

import pkgutil
import subprocess
import sys

import hwsim

#: Parts of hwsim that need torch, and why: the functional simulation runs the torch model's search
#: and compares with the fake-quantized torch model; the commands and the CLI above everything
#: trace, quantize and train.
TORCH_PARTS = ("hwsim.funcsim", "hwsim.commands", "hwsim.cli")


def _core_modules() -> list[str]:
    """Every hwsim module outside ``TORCH_PARTS`` (new modules are covered automatically)."""
    names = [m.name for m in pkgutil.walk_packages(hwsim.__path__, "hwsim.")]
    return ["hwsim"] + sorted(n for n in names
                              if not any(n == p or n.startswith(p + ".") for p in TORCH_PARTS))


def test_the_simulator_core_imports_no_torch():
    modules = _core_modules()
    # The discovery sees the core (a broken walk would make this test pass vacuously).
    assert {"hwsim.spec", "hwsim.cost", "hwsim.simulate", "hwsim.schedule", "hwsim.dse.run",
            "hwsim.kernels.gemm", "hwsim.precision", "hwsim.compression"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "    if 'torch' in sys.modules:\n"
        "        print(m)\n"
        "        break\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {out.stdout.strip()} imports torch"


def test_simulating_a_paper_graph_imports_no_torch():
    code = (
        "import sys, hwsim, workloads\n"
        "from models.config import load_config\n"
        "cfg = load_config('tiny')\n"
        "g = workloads.paper_graph(cfg, 1.0, 2, 'dr')\n"
        "r = hwsim.simulate(g, 'edge', 'int4', 1.0, config=cfg)\n"
        "assert r.summary['latency_s'] > 0\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
