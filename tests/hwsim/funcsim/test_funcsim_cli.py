"""``hwsim funcsim`` end to end on a tiny export."""

from __future__ import annotations

import json

from hwsim.cli import main


def test_cli_json(exports, capsys):
    rc = main(["funcsim", "--model", "tiny", "--checkpoint", str(exports["int8"]), "--frames", "60",
               "--lm-fusion", "dr", "--beam", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["equality"]["nbest_identical"] and out["equality"]["integer_exact"]
    assert out["frames"] == 15 and len(out["nbest"]) == 2
    assert {m["module"] for m in out["equality"]["modules"]} >= {"rnnt.joint.out", "lm_src.layers.0"}


def test_cli_text_and_errors(exports, capsys):
    assert main(["funcsim", "--model", "tiny", "--checkpoint", str(exports["int4"]), "--frames", "40"]) == 0
    text = capsys.readouterr().out
    assert "n-best identical: yes" in text and "code mismatches 0" in text
    assert main(["funcsim", "--model", "small", "--checkpoint", str(exports["int4"]), "--frames", "40"]) == 2
    capsys.readouterr()
    assert main(["funcsim", "--model", "tiny", "--checkpoint", str(exports["int4-naive"]), "--frames", "40"]) == 0
    assert "exact parts identical: yes" in capsys.readouterr().out
    # float weights: the integer simulation has nothing to run
    assert main(["funcsim", "--model", "tiny", "--checkpoint", str(exports["fp16"]), "--frames", "40"]) == 2
    assert "unsupported by funcsim" in capsys.readouterr().err
