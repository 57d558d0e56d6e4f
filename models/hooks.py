"""Step context for tracing: which recurrence step or search step an op belongs to.

The tracer (``workloads.trace``) reads ``current_step()`` for every aten op it records. The
encoder's LSTM layers wrap recurrence step ``t`` in ``step_scope(t)`` (``t`` = frame index at that
layer, in processing order: a backward direction counts down); the search wraps each search step
in ``step_scope(i)`` (see ``models.search``). Ops outside any scope (whole-sequence input GEMMs,
encoder-output projection, state initialisation) get step -1.

A ``ContextVar`` (not a global) keeps nested scopes and threads independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_STEP: ContextVar[int] = ContextVar("hwsim_step", default=-1)


def current_step() -> int:
    """The innermost active step index, or -1 outside any ``step_scope``."""
    return _STEP.get()


@contextmanager
def step_scope(step: int) -> Iterator[int]:
    """Run the body with ``current_step() == step``; the previous value is restored on exit."""
    token = _STEP.set(int(step))
    try:
        yield int(step)
    finally:
        _STEP.reset(token)
