"""Sweep results on disk: one directory per sweep, Parquet parts written atomically.

Layout of ``DIR``::

    DIR/sweep.yaml                     copy of the definition (resuming checks it is unchanged)
    DIR/.lock                          held (flock) by the sweep writing into DIR
    DIR/parts/part-<chunkhash>.parquet one file per finished chunk, one row per design point

Each part is written to a temporary name in ``DIR/parts`` and renamed into place, so a killed
process leaves either a whole part or none. ``load`` reads every part and keeps one row per key
(a finished ``ok`` row wins over an ``error`` row of the same point).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from hwsim.dse.loading import loads_sweep
from hwsim.dse.sweep import Sweep
from models.yamlio import ConfigError

log = logging.getLogger(__name__)

DEFINITION = "sweep.yaml"
PARTS = "parts"
#: Leading columns of every results table, in order; parameters and figures follow.
ID_COLUMNS = ("key", "status")
TAIL_COLUMNS = ("error", "elapsed_s")


def _canonical(definition: dict) -> str:
    return json.dumps(definition, sort_keys=True, default=str)


LOCK = ".lock"


def create_dir(out_dir: str | Path) -> Path:
    """Create the results folder ``out_dir`` (and its parents) if needed.

    Raises:
        ConfigError: it is an existing file, or cannot be created (a parent is a file, no permission).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is an existing file; expected a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the directory ({exc.strerror})") from exc
    return out


@contextlib.contextmanager
def lock(out_dir: str | Path) -> Iterator[None]:
    """Hold ``DIR/.lock`` (``fcntl.flock``, exclusive) while a sweep writes into ``DIR``.

    The lock is released by the kernel when the process ends, however it ends, so a killed run
    never leaves a stale lock behind.

    Raises:
        ConfigError: another process holds the lock (its pid is named when known).
    """
    import fcntl

    path = Path(out_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create the lock file {path} ({exc.strerror})") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise ConfigError(f"--out {out_dir}: another sweep{f' (pid {holder})' if holder else ''} is "
                              "running into this folder; wait for it to finish (then re-run to resume) "
                              "or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def prepare(out_dir: str | Path, sweep: Sweep, force: bool = False) -> Path:
    """Create ``out_dir`` for ``sweep``, or check that it already holds the same sweep.

    The definitions are compared as parsed data (comments and formatting may differ).

    Raises:
        ConfigError: ``out_dir`` holds a different sweep definition and ``force`` is false.
    """
    out = Path(out_dir)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    for stale in (out / PARTS).glob(".*.tmp"):  # left by a process killed while writing
        stale.unlink(missing_ok=True)
    copy = out / DEFINITION
    if copy.exists():
        try:
            old = loads_sweep(copy.read_text(), source=str(copy)).definition
        except ConfigError as exc:
            old = {"unreadable": str(exc)}
        if _canonical(old) != _canonical(sweep.definition):
            if not force:
                raise ConfigError(
                    f"{out}: holds results of a different sweep definition ({copy} differs from "
                    f"{sweep.source}); use another --out directory, or --force to add to it")
            log.warning("%s: sweep definition changed; --force given, keeping old parts", out)
    _atomic_write_bytes(copy, sweep.text.encode())
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def chunk_hash(keys: list[str]) -> str:
    """Name of a chunk's part: hash of its point keys (same points -> same file)."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:20]


def write_part(out_dir: str | Path, rows: list[dict]) -> Path:
    """Write one chunk's rows as ``DIR/parts/part-<chunkhash>.parquet`` (atomic: tmp + rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = Path(out_dir) / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    path = parts / f"part-{chunk_hash(list(frame['key']))}.parquet"
    tmp = parts / f".{path.name}.{os.getpid()}.tmp"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def check_sweep_dir(out_dir: str | Path, arg: str = "") -> Path:
    """``out_dir`` as a Path if it is a sweep results directory (``DIR/sweep.yaml`` or ``DIR/parts/``).

    Raises:
        ConfigError: it is missing, not a directory, or holds no sweep; ``arg`` names the option.
    """
    out = Path(out_dir)
    where = f"{arg} {out}" if arg else str(out)
    if not out.is_dir():
        raise ConfigError(f"{where}: {'is not a directory' if out.exists() else 'no such directory'}; "
                          "expected the --out folder of `hwsim sweep`")
    if not (out / DEFINITION).exists() and not (out / PARTS).is_dir():
        raise ConfigError(f"{where}: not a sweep directory (no {DEFINITION}, no {PARTS}/); expected the "
                          "--out folder of `hwsim sweep`")
    return out


def part_paths(out_dir: str | Path) -> list[Path]:
    return sorted((Path(out_dir) / PARTS).glob("part-*.parquet"))


def finished_keys(out_dir: str | Path, retry_errors: bool = False) -> set[str]:
    """Keys already recorded under ``out_dir`` (only ``ok`` ones if ``retry_errors``)."""
    import pyarrow.parquet as pq

    keys: set[str] = set()
    for p in part_paths(out_dir):
        t = pq.read_table(p, columns=["key", "status"]).to_pydict()
        keys.update(k for k, s in zip(t["key"], t["status"]) if s == "ok" or not retry_errors)
    return keys


def error_keys(out_dir: str | Path) -> set[str]:
    """Keys recorded under ``out_dir`` only with ``status=error`` (no ``ok`` row for them)."""
    import pyarrow.parquet as pq

    ok: set[str] = set()
    failed: set[str] = set()
    for p in part_paths(out_dir):
        t = pq.read_table(p, columns=["key", "status"]).to_pydict()
        for k, st in zip(t["key"], t["status"]):
            (ok if st == "ok" else failed).add(k)
    return failed - ok


def load(out_dir: str | Path) -> pd.DataFrame:
    """All results of a sweep directory, one row per design point (deduplicated by key).

    Returns:
        DataFrame with ``key``, ``status``, the point parameters (named as in the sweep YAML, e.g.
        ``beam``, ``hw.core.matrix.rows``), the figures (``latency_s``, ``rtf``, ...),
        ``error`` and ``elapsed_s``; sorted by key. Empty (no columns but ``key``, ``status``) if
        nothing has finished.

    Raises:
        ConfigError: ``out_dir`` is not a sweep directory.
    """
    out = check_sweep_dir(out_dir)
    frames = [pd.read_parquet(p) for p in part_paths(out)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(ID_COLUMNS + TAIL_COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    df["_rank"] = (df["status"] != "ok").astype(int)
    df = df.sort_values(["key", "_rank"], kind="stable").drop_duplicates("key", keep="first")
    df = df.drop(columns="_rank").reset_index(drop=True)
    lead = [c for c in ID_COLUMNS if c in df]
    tail = [c for c in TAIL_COLUMNS if c in df]
    return df[lead + [c for c in df.columns if c not in lead and c not in tail] + tail]
