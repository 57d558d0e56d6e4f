"""The `make accuracy` duration printed in the README and the Makefile comes from the measured
training times of the committed checkpoints (``checkpoints/MANIFEST.json``, ``train_wall_s``)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_training_minutes_in_readme_and_makefile_are_the_measured_ones():
    ck = json.loads((ROOT / "checkpoints" / "MANIFEST.json").read_text())["checkpoints"]
    rnnt_s = ck["fp32"]["rnnt"]["train_wall_s"]
    # The LMs and their QAT train in a child process alongside the FP32 RNN-T
    # (models.train.pipeline.stage_train): they add no wall time while they finish first.
    lms_s = ck["fp32"]["lm_src"]["train_wall_s"] + ck["fp32"]["lm_ext"]["train_wall_s"] + ck["int4-qat"]["lms"]["train_wall_s"]
    assert lms_s < rnnt_s
    minutes = round((rnnt_s + ck["int4-qat"]["train_wall_s"]) / 60)
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"`make accuracy` \(more than 1.5 h on 2 cores: training alone measured {minutes} min", readme)
    assert f"training {minutes} min" in makefile and re.search(r"more than\s+#\s+1.5 h on 2 cores", makefile)
    assert minutes > 90  # "more than 1.5 h": the training alone takes longer
