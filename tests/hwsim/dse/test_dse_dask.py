"""The Dask executor gives the same results as local processes (cluster on loopback only)."""

import pandas as pd
import pytest

import dse_fakes
from hwsim.dse import load, run_sweep

distributed = pytest.importorskip("distributed")


def stable(df):
    return df.drop(columns=["elapsed_s"]).sort_values("key").reset_index(drop=True)


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two workers (threads of this process) on 127.0.0.1, closed afterwards."""
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                                 dashboard_address="127.0.0.1:0")
    try:
        yield c
    finally:
        c.close()


def test_dask_matches_local(cluster, fake_sweep_file, tmp_path):
    local = tmp_path / "local"
    dask = tmp_path / "dask"
    run_sweep(fake_sweep_file, local, evaluate=dse_fakes.fake_evaluate, executor="local", workers=2,
              chunk=5, progress=False)
    s = run_sweep(fake_sweep_file, dask, evaluate=dse_fakes.FailingEvaluate(fail_beam=99),
                  executor="dask", scheduler=cluster.scheduler_address, chunk=5, progress=False)
    assert (s.done, s.errors) == (48, 0)
    pd.testing.assert_frame_equal(stable(load(dask)), stable(load(local)))


def test_dask_records_failures_and_resumes(cluster, fake_sweep_file, tmp_path):
    out = tmp_path / "dask"

    def stop(n):
        if n == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(fake_sweep_file, out, evaluate=dse_fakes.FailingEvaluate(fail_beam=4), executor="dask",
                  scheduler=cluster.scheduler_address, chunk=4, progress=False, on_chunk=stop)
    s = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.FailingEvaluate(fail_beam=4), executor="dask",
                  scheduler=cluster.scheduler_address, chunk=4, progress=False)
    assert s.skipped == 12 and s.done == 36
    df = load(out)
    assert len(df) == 48 and (df.loc[df.beam == 4, "status"] == "error").all()


def test_dask_local_cluster_of_processes(fake_sweep_file, tmp_path):
    """No scheduler given: the executor starts (and stops) its own LocalCluster on loopback."""
    out = tmp_path / "own"
    s = run_sweep(fake_sweep_file, out, evaluate=dse_fakes.fake_evaluate, executor="dask", workers=1,
                  chunk=16, progress=False)
    assert s.done == 48
    assert not (out / ".dask-scratch").exists()
