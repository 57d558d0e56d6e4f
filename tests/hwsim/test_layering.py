"""The import flow points down (models <- workloads <- hwsim): simulating needs no torch."""

import subprocess
import sys


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
