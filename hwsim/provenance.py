"""Where a result comes from: the project's version and git commit, and one UTC time stamp format.

Run folders (``provenance.json``), calibrated presets, validation results and the inverse
search record these, so that a figure can be traced to the code and the time that made it.
"""

from __future__ import annotations

import datetime
from pathlib import Path

#: The project's checkout (an editable install runs from it).
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def utc_stamp() -> str:
    """Now, as results record it: ``YYYY-MM-DD HH:MM UTC``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def utc_iso() -> str:
    """Now as ISO 8601 with seconds and offset (machine-readable records)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def version_string() -> str:
    """``hwsim VERSION`` from the installed package's metadata, plus ``(git COMMIT)`` when this
    code runs from a git checkout (an editable install): read from ``.git`` directly, no ``git``
    process, so it costs a few file reads. Uncommitted changes are not detected."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = f"hwsim {version('hwsim')}"
    except PackageNotFoundError:
        text = "hwsim (version unknown: the package is not installed)"
    commit = git_commit(PROJECT_ROOT)
    return f"{text} (git {commit[:12]})" if commit else text


def git_commit(root: Path) -> str | None:
    """The commit checked out in the git work tree at ``root`` (40 hex digits), or None when
    ``root`` is not one or its HEAD cannot be read (a ``.git`` folder, or a ``gitdir:`` file as
    worktrees and submodules have; loose refs, then ``packed-refs``)."""
    try:
        git = root / ".git"
        if git.is_file():
            gitdir = git.read_text().strip().removeprefix("gitdir:").strip()
            git = (root / gitdir).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if _is_sha(head) else None
        ref = head.removeprefix("ref:").strip()
        common = git / "commondir"  # a worktree's refs live in the main repository
        dirs = [git] + ([(git / common.read_text().strip()).resolve()] if common.is_file() else [])
        for d in dirs:
            if (d / ref).is_file():
                sha = (d / ref).read_text().strip()
                return sha if _is_sha(sha) else None
        for d in dirs:
            if (d / "packed-refs").is_file():
                for line in (d / "packed-refs").read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref and _is_sha(sha):
                        return sha
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)
