"""Sweeps with the real simulator on the tiny model: figures agree with a direct simulation,
executors agree, the CLI resumes, the report section renders."""

import pandas as pd
import pytest

from dse_fakes import SWEEPS
from hwsim.cli import main
from hwsim.dse import load, load_sweep, run_sweep

TINY = SWEEPS / "tiny.yaml"


def stable(df):
    return df.drop(columns=["elapsed_s"]).sort_values("key").reset_index(drop=True)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "out"
    s = run_sweep(TINY, out, workers=0, progress=False)
    assert (s.planned, s.done, s.errors) == (16, 16, 0)
    return out, load(out)


def test_rows_match_a_direct_simulation(tiny_results):
    from hwsim import simulate
    from hwsim.spec import load_spec
    from models.config import load_config
    from workloads import paper_graph

    _, df = tiny_results
    assert (df["status"] == "ok").all()
    for col in ["latency_s", "rtf", "macs", "compression_x", "weight_bytes", "energy_j", "onchip_bytes",
                "peak_ops_per_s", "hw.core.matrix.rows", "hw.dram_bw_bytes_per_s"] + \
               [f"phase_{p}_s" for p in ("encoder", "prediction", "joint", "lm_ext", "lm_src", "search")]:
        assert col in df.columns, col
    row = df[(df["precision"] == "int4") & (df["beam"] == 4) & (df["hw.core.matrix.rows"] == 16)
             & (df["hw.dram_bw_bytes_per_s"] == 25.6e9)].iloc[0]
    config = load_config("tiny")
    hw = load_spec("rapid4").replace_path("core.matrix.rows", 16).replace_path("dram_bw_bytes_per_s", 25.6e9)
    ref = simulate(paper_graph(config, 1.0, 4, "dr", method="alsd"), hw, "int4", 1.0, config=config).summary
    assert row["rtf"] == ref["rtf"] and row["latency_s"] == ref["latency_s"]
    assert row["phase_encoder_s"] == ref["phases"]["encoder"] and row["energy_j"] == ref["energy_j"]
    assert row["onchip_bytes"] == hw.onchip_bytes
    assert row["peak_ops_per_s"] == 2 * hw.peak_macs_per_s("int4")
    # A faster DRAM never makes the same point slower.
    pivot = df.pivot_table(index=["precision", "beam", "hw.core.matrix.rows"], columns="hw.dram_bw_bytes_per_s",
                           values="latency_s")
    assert (pivot[51.2e9] <= pivot[25.6e9]).all()


def test_local_and_dask_executors_agree_with_in_process(tiny_results, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, reference = tiny_results
    run_sweep(TINY, tmp_path / "local", executor="local", workers=2, chunk=3, progress=False)
    pd.testing.assert_frame_equal(stable(load(tmp_path / "local")), stable(reference))
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0")
    try:
        run_sweep(TINY, tmp_path / "dask", executor="dask", scheduler=cluster.scheduler_address, chunk=3,
                  progress=False)
    finally:
        cluster.close()
    pd.testing.assert_frame_equal(stable(load(tmp_path / "dask")), stable(reference))


def test_cli_runs_resumes_and_refuses_another_definition(tmp_path, capsys):
    out = tmp_path / "cli"
    small = tmp_path / "small.yaml"
    small.write_text(TINY.read_text().replace("beam: [1, 4]", "beam: [1]").replace(
        "precision: [fp16, int4]", "precision: [int4]"))
    assert load_sweep(small).grid_size == 4
    assert main(["sweep", str(small), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    assert len(load(out)) == 4
    assert (out / "sweep.yaml").read_text() == small.read_text()
    assert main(["sweep", str(small), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    assert len(load(out)) == 4
    assert main(["sweep", str(TINY), "--out", str(out), "--workers", "0", "--no-progress"]) == 2
    assert "different sweep definition" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(small.read_text().replace("hw.core.matrix.rows", "hw.core.matrix.rowz"))
    assert main(["sweep", str(bad), "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "vary.hw.core.matrix.rowz[0]" in capsys.readouterr().err


def test_report_section(tiny_results, tmp_path):
    from reports.dse import PARETO_PNG, dse_section

    _, df = tiny_results
    md = dse_section(df, tmp_path, where={"beam": 1})
    assert (tmp_path / PARETO_PNG).stat().st_size > 10_000
    assert "## Design-space exploration" in md and f"]({PARETO_PNG})" in md
    assert "### Sensitivity of RTF" in md and "`precision`" in md and "`hw.dram_bw_bytes_per_s`" in md
    assert "among points with `beam`=1" in md
    # default: the largest beam; a sweep directory is accepted in place of its table
    out_dir, _ = tiny_results
    auto = dse_section(out_dir, tmp_path / "auto")
    assert "among points with `beam`=4" in auto and (tmp_path / "auto" / PARETO_PNG).exists()
    assert "among points" not in dse_section(df, tmp_path / "all", where=None)
