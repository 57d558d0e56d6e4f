"""Sweep results on disk: one directory per sweep, Parquet parts written atomically.

Layout of ``DIR``::

    DIR/sweep.yaml                     copy of the definition (resuming checks it is unchanged)
    DIR/parts/part-<chunkhash>.parquet one file per finished chunk, one row per design point

Each part is written to a temporary name in ``DIR/parts`` and renamed into place, so a killed
process leaves either a whole part or none. ``load`` reads every part and keeps one row per key
(a finished ``ok`` row wins over an ``error`` row of the same point).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
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


def load(out_dir: str | Path) -> pd.DataFrame:
    """All results of a sweep directory, one row per design point (deduplicated by key).

    Returns:
        DataFrame with ``key``, ``status``, the point parameters (named as in the sweep YAML, e.g.
        ``beam``, ``hw.core.matrix.rows``), the figures (``latency_s``, ``rtf``, ...),
        ``error`` and ``elapsed_s``; sorted by key. Empty (no columns but ``key``, ``status``) if
        nothing has finished.

    Raises:
        FileNotFoundError: ``out_dir`` is not a sweep directory.
    """
    out = Path(out_dir)
    if not (out / DEFINITION).exists() and not (out / PARTS).is_dir():
        raise FileNotFoundError(f"{out}: not a sweep directory (no {DEFINITION}, no {PARTS}/)")
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
