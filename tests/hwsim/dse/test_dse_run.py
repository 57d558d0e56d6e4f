"""Running sweeps with fake evaluators: results, failures, interruption and resume."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import dse_fakes
from dse_fakes import HERE
from hwsim.dse import SweepIncomplete, load, load_sweep, run_sweep
from hwsim.dse.store import part_paths
from models.yamlio import ConfigError

REPO = Path(__file__).resolve().parents[3]
VOLATILE = ["elapsed_s"]


def stable(df: pd.DataFrame) -> pd.DataFrame:
    """Results without the timing columns, sorted by key (for exact comparison between runs)."""
    return df.drop(columns=VOLATILE).sort_values("key").reset_index(drop=True)


def raw_keys(out: Path) -> list[str]:
    """Keys of every row of every part (no deduplication): each point must appear once."""
    return [k for p in part_paths(out) for k in pq.read_table(p, columns=["key"]).column("key").to_pylist()]


@pytest.fixture
def reference(fake_sweep_file, tmp_path):
    """The uninterrupted in-process run of the fake sweep."""
    out = tmp_path / "reference"
    s = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=0, chunk=5,
                  progress=False)
    assert (s.planned, s.done, s.errors, s.skipped) == (48, 48, 0, 0)
    return stable(load(out))


def test_results_table(reference, fake_sweep_file):
    df = reference
    sweep = load_sweep(fake_sweep_file)
    assert len(df) == 48 and df["key"].is_unique and (df["status"] == "ok").all()
    for col in sweep.params + ["rtf", "latency_s", "phase_encoder_s", "error"]:
        assert col in df.columns, col
    row = df.iloc[0].to_dict()
    point = {c: row[c] for c in sweep.params}
    expected = dse_fakes.fake_evaluate(point)
    assert row["rtf"] == pytest.approx(expected["rtf"], rel=0, abs=0)
    assert (df["error"] == "").all()


def test_local_processes_match_inline_and_write_only_in_out_dir(reference, fake_sweep_file, tmp_path):
    out = tmp_path / "only" / "here"
    before = set(tmp_path.rglob("*"))
    run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, executor="local", workers=2,
              chunk=7, progress=False)
    pd.testing.assert_frame_equal(stable(load(out)), reference)
    assert sorted(raw_keys(out)) == sorted(reference["key"])
    new = set(tmp_path.rglob("*")) - before
    assert all(p == out.parent or p == out or out in p.parents for p in new)


def test_failing_points_are_recorded_and_the_sweep_goes_on(fake_sweep_file, tmp_path):
    out = tmp_path / "fail"
    s = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.FailingEvaluate(fail_beam=4), workers=0,
                  progress=False)
    df = load(out)
    assert (s.done, s.errors) == (48, 24)
    bad = df[df["beam"] == 4]
    assert (bad["status"] == "error").all() and bad["rtf"].isna().all()
    assert bad["error"].str.contains("ValueError: beam 4 is not supported by this fake").all()
    assert (df.loc[df["beam"] == 1, "status"] == "ok").all()
    # Errors count as finished; --retry-errors evaluates them again and ok rows win on load.
    again = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=0, progress=False)
    assert again.done == 0
    again = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=0,
                      retry_errors=True, progress=False)
    assert (again.done, again.errors) == (24, 0)
    assert (load(out)["status"] == "ok").all() and len(load(out)) == 48


def test_invalid_hw_combination_is_an_error_row(tmp_path, monkeypatch):
    """Values valid one by one but rejected together by the spec become status=error rows
    (found while planning, when constraints need the spec; nothing is evaluated for them)."""
    import hwsim.dse.sweep as sweep_mod

    real = sweep_mod.spec_with

    def picky(hw, overrides):
        if dict(overrides) == {"core.matrix.rows": 32, "dram_bw_bytes_per_s": 51.2e9}:
            raise ConfigError("rapid4: core.matrix.rows: 32 rows need a slower DRAM (test rule)")
        return real(hw, overrides)

    monkeypatch.setattr(sweep_mod, "spec_with", picky)
    path = tmp_path / "combo.yaml"
    path.write_text(textwrap.dedent("""
        base: {model: tiny, hw: rapid4, audio_s: 1, precision: int4, beam: 1}
        vary:
          hw.core.matrix.rows: [16, 32]
          hw.dram_bw_bytes_per_s: [25.6e9, 51.2e9]
        constraints: ["onchip_bytes > 0"]
        """))
    calls = []

    def counting(point):
        calls.append(point)
        return dse_fakes.fake_evaluate(point)

    s = run_sweep(path, tmp_path / "out", evaluate=counting, workers=0, progress=False)
    df = load(tmp_path / "out")
    assert (s.done, s.errors, len(calls)) == (4, 1, 3)
    bad = df[df["status"] == "error"].iloc[0]
    assert bad["hw.core.matrix.rows"] == 32 and bad["hw.dram_bw_bytes_per_s"] == 51.2e9
    assert "32 rows need a slower DRAM" in bad["error"] and pd.isna(bad["rtf"])


@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_sweep_resumes_without_loss_or_duplicates(reference, fake_sweep_file, tmp_path, workers):
    out = tmp_path / f"hook{workers}"

    def stop_after_two(chunks_written):
        if chunks_written == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=workers, chunk=5,
                  progress=False, on_chunk=stop_after_two)
    assert len(part_paths(out)) == 2
    first = load(out)
    assert len(first) == 10
    s = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=workers, chunk=5,
                  progress=False)
    assert (s.skipped, s.done) == (10, 38)
    keys = raw_keys(out)
    assert sorted(keys) == sorted(reference["key"])          # every point exactly once
    pd.testing.assert_frame_equal(stable(load(out)), reference)
    # finished rows were not rewritten
    pd.testing.assert_frame_equal(stable(load(out)).set_index("key").loc[first["key"]].reset_index(),
                                  stable(first).reset_index(drop=True)[stable(load(out)).columns])


def test_sigkill_mid_sweep_then_resume(reference, fake_sweep_file, tmp_path):
    out = tmp_path / "killed"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import dse_fakes
        from hwsim.dse import run_sweep
        run_sweep({str(fake_sweep_file)!r}, {str(out)!r}, evaluate=dse_fakes.SlowEvaluate(0.1),
                  executor="local", workers=2, chunk=3, progress=False)
        """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(part_paths(out)) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no parts written in 60 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)     # the driver and its workers, mid-sweep
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    done_before = len(load(out))
    assert 0 < done_before < 48
    s = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=0, progress=False)
    assert s.skipped == done_before and s.done == 48 - done_before
    assert sorted(raw_keys(out)) == sorted(reference["key"])
    pd.testing.assert_frame_equal(stable(load(out)), reference)
    assert not list((out / "parts").glob(".*.tmp"))


def test_killed_worker_keeps_finished_points(reference, fake_sweep_file, tmp_path):
    out = tmp_path / "dying"
    flag = tmp_path / "die"
    flag.touch()
    with pytest.raises(SweepIncomplete) as err:
        run_sweep(fake_sweep_file, out, evaluate=dse_fakes.DyingEvaluate(4, str(flag)), executor="local",
                  workers=2, chunk=4, progress=False)
    assert err.value.summary.missing > 0
    done_before = len(load(out))
    flag.unlink()
    s = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.DyingEvaluate(4, str(flag)), workers=0,
                  chunk=4, progress=False)
    assert s.skipped == done_before and s.missing == 0
    pd.testing.assert_frame_equal(stable(load(out)), reference)


def test_refuses_a_directory_of_another_sweep(fake_sweep_file, tmp_path):
    out = tmp_path / "out"
    run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=0, progress=False)
    # Comments and formatting do not matter ...
    fake_sweep_file.write_text("# same sweep\n" + fake_sweep_file.read_text())
    assert run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, workers=0,
                     progress=False).skipped == 48
    # ... a changed definition does.
    other = tmp_path / "other.yaml"
    other.write_text(fake_sweep_file.read_text().replace("beam: [1, 4]", "beam: [1, 8]"))
    with pytest.raises(ConfigError, match="different sweep definition"):
        run_sweep(other, out, evaluate=dse_fakes.fake_evaluate, workers=0, progress=False)
    s = run_sweep(other, out, evaluate=dse_fakes.fake_evaluate, workers=0, progress=False, force=True)
    assert (s.skipped, s.done) == (24, 24)
