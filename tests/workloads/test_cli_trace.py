"""``hwsim trace``: writes the Parquet graph with its metadata and prints the phase table."""

from hwsim.cli import main
from workloads.graph import OpGraph


def test_trace_command(tmp_path, capsys):
    out = tmp_path / "g.parquet"
    rc = main(["trace", "--model", "tiny", "--beam", "3", "--lm-fusion", "dr", "--frames", "40",
               "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "lm_ext" in text and "unknown ops: none" in text
    g = OpGraph.load(out)
    assert g.meta["model"] == "tiny" and g.meta["beam"] == 3 and g.meta["lm_fusion"] == "dr"
    assert g.meta["frames"] == 40 and g.meta["search"]["search_steps"] > 0
    frame = g.to_frame()
    assert {"op", "kind", "phase", "step", "macs", "bytes_read", "bytes_written", "weight"} <= set(frame.columns)
