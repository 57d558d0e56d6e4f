"""Output paths: checked before any work, written atomically (the sub-commands, and library code
that writes results: calibrated presets, the inverse search's record).

Every command that writes (``--out FILE`` or ``--out DIR``) calls :func:`check_file` /
:func:`check_dir` before it starts, so that an unusable path (an existing file where a folder is
wanted, a folder where a file is wanted, a parent that is a file, a read-only folder) is a one-line
``UserError`` and not a traceback after minutes of work. The output is then written through
:func:`atomic_file` / :func:`atomic_dir`: into a temporary name in the same folder, renamed into
place when complete, so a failure or Ctrl-C leaves no partial file or folder behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.yamlio import UserError


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            return parent
    return Path(".")


def _check_parent(path: Path, arg: str) -> None:
    base = _existing_ancestor(path.absolute())
    if not base.is_dir():
        raise UserError(f"{arg} {path}: {base} is a file, not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"{arg} {path}: directory {base} is not writable")


def check_file(path: str | Path, arg: str = "--out", suffix: str | None = None) -> Path:
    """Check that ``path`` can be written as a file (before any work).

    Args:
        path: the output file; it may exist (it is replaced) and its folders may be missing
            (they are created).
        arg: the argument's name, for messages.
        suffix: required file ending (e.g. ``.parquet``), or None.

    Raises:
        UserError: ``path`` is a directory, has the wrong suffix, or cannot be created.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{arg} {path}: is a directory; expected a file name")
    if suffix and path.suffix != suffix:
        raise UserError(f"{arg} {path}: expected a {suffix} file name")
    if path.exists() and not path.is_file():
        raise UserError(f"{arg} {path}: exists and is not a regular file")
    _check_parent(path, arg)
    return path


def check_dir(path: str | Path, arg: str = "--out") -> Path:
    """Check that ``path`` can be written as a folder (it may exist; files in it are replaced).

    Raises:
        UserError: ``path`` is an existing file, or cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{arg} {path}: is an existing file; expected a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{arg} {path}: directory is not writable")
        return path
    _check_parent(path, arg)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parents(path: Path) -> list[Path]:
    """Create the missing folders above ``path``; returns those created, deepest first."""
    created = []
    parent = path.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    return created


def _remove_created(created: list[Path]) -> None:
    for d in created:  # deepest first; only if still empty
        try:
            d.rmdir()
        except OSError:
            break


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` when the block succeeds.

    The temporary name keeps ``path``'s suffix (writers that append one, like ``np.savez``, do
    not rename it). On any exception the temporary file and the folders made for it are removed.
    """
    path = Path(path)
    created = _make_parents(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the output is a normal file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_created(created)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder; its contents become ``path``'s when the block succeeds.

    A new ``path`` is the temporary folder renamed (a sibling, so the rename is atomic). An
    existing ``path`` receives each entry by rename (entries of the same name are replaced, others
    kept); the temporary folder is then inside ``path``, so only ``path`` needs to be writable.
    On any exception the temporary folder (and the folders made for it) is removed.
    """
    path = Path(path)
    exists = path.is_dir()
    created = [] if exists else _make_parents(path)
    parent = path if exists else path.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        if not exists:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the output is a normal folder
            os.replace(tmp, path)
            return
        for entry in sorted(tmp.iterdir()):
            target = path / entry.name
            if target.is_dir() and not target.is_symlink() and entry.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise
