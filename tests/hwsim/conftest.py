"""Shared helpers for the hwsim tests: hand-made graphs and a tiny spec (hwsim_testgraphs.py)."""

import sys
from pathlib import Path

HERE = Path(__file__).parent
# --import-mode=importlib does not put test folders on sys.path; the helpers are imported by name.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
