"""Repeated blocks of ops: record a block's ops once, emit it many times without Python per op.

A decode repeats the same few blocks of ops thousands of times: an encoder frame (one recurrent
GEMM and the LSTM cell), a search step of a given shape. The analytic builder
(``workloads.rnnt``) records each distinct block once by running its Python code on
*placeholder* inputs, then emits every repetition with one Numba pass (``replay``), so that the
graph of an hour of audio (about 23M ops) builds in seconds.

A block reads and writes a fixed-size *state*: op ids held between blocks (an LSTM's ``h`` and
``c``; a search's network states, cached rows and hypothesis scores), ``None`` where empty. While
recording, each present state entry ``i`` holds the placeholder id ``-(i + 2)``, so every
producer an op of the block names is one of

- *internal*: an op of the block itself (id >= the block's first id): stored relative to it;
- *state*: a placeholder (id < 0): entry ``-(id + 2)`` of the state at the block's start;
- *absolute*: an earlier op that every repetition reads (e.g. the encoder output projection).

and each state entry after the block is internal, a copy of an entry before it, absolute, or
empty. Op steps equal to the block's step are stored relative to it. The block's code may branch
only on its key (the arguments that decide its shape) and on which state entries are present;
``record`` is given both, and the builder keys its cache by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numba import njit

#: The step a block is recorded at; steps equal to it are stored relative to the block's step.
_RECORD_STEP = 1 << 30

INTERNAL, STATE, ABSOLUTE, EMPTY = 0, 1, 2, 3


@dataclass(frozen=True)
class Block:
    """One recorded block (see the module docstring).

    Attributes:
        code, step, step_relative: per op, its template code and step (``step`` is an offset
            from the block's step where ``step_relative``).
        dptr, dkind, dval: producers per op in CSR form, each ``INTERNAL`` (``dval`` = offset
            from the block's first op), ``STATE`` (entry) or ``ABSOLUTE`` (op id).
        okind, oval: the state after the block, per entry ``INTERNAL``, ``STATE``, ``ABSOLUTE``
            or ``EMPTY``.
        result: what the block's function returned (it may depend only on the key).
    """

    code: np.ndarray
    step: np.ndarray
    step_relative: np.ndarray
    dptr: np.ndarray
    dkind: np.ndarray
    dval: np.ndarray
    okind: np.ndarray
    oval: np.ndarray
    result: Any
    present_after: tuple[bool, ...]   # which state entries the block leaves non-empty


def record(builder, fn: Callable[[int, list[int | None]], tuple[list[int | None], Any]],
           present: tuple[bool, ...]) -> Block:
    """Record ``fn(step, state) -> (state after, result)`` on placeholder state.

    ``builder`` is a ``workloads.rnnt.GraphBuilder``: the ops ``fn`` adds are taken back off it
    (their templates stay interned).
    """
    cols = builder.cols
    start = len(cols.code)                     # in the one-by-one buffers
    first = len(cols)                          # the id the block's first op gets
    d0 = len(cols.deps)
    state = [-(i + 2) if p else None for i, p in enumerate(present)]
    after, result = fn(_RECORD_STEP, state)
    n = len(cols.code) - start
    code = np.frombuffer(cols.code, dtype=np.int32)[start:].copy()
    steps = np.frombuffer(cols.step, dtype=np.int32)[start:].astype(np.int64)
    ptr = np.frombuffer(cols.ptr, dtype=np.int64)[start:].copy() - d0
    deps = np.frombuffer(cols.deps, dtype=np.int32)[d0:].astype(np.int64)
    del cols.code[start:], cols.step[start:], cols.ptr[start + 1:], cols.deps[d0:]
    rel = steps == _RECORD_STEP
    dkind = np.where(deps < 0, STATE, np.where(deps >= first, INTERNAL, ABSOLUTE)).astype(np.int8)
    dval = np.where(deps < 0, -deps - 2, np.where(deps >= first, deps - first, deps))
    okind = np.empty(len(present), dtype=np.int8)
    oval = np.zeros(len(present), dtype=np.int64)
    for i, v in enumerate(after):
        if v is None:
            okind[i] = EMPTY
        elif v < 0:
            okind[i], oval[i] = STATE, -v - 2
        elif v >= first:
            okind[i], oval[i] = INTERNAL, v - first
        else:
            okind[i], oval[i] = ABSOLUTE, v
    assert len(ptr) == n + 1
    return Block(code, np.where(rel, 0, steps), rel, ptr, dkind, dval, okind, oval, result,
                 tuple(bool(k != EMPTY) for k in okind))


@njit(cache=True, nogil=True)
def _replay(b_op0, b_code, b_step, b_rel, b_dptr, b_dkind, b_dval, b_okind, b_oval,
            calls, call_step, state, first_id, n_ops, n_deps):
    n_calls = len(calls)
    S = len(state)
    code = np.empty(n_ops, dtype=np.int32)
    step = np.empty(n_ops, dtype=np.int32)
    counts = np.empty(n_ops, dtype=np.int32)
    deps = np.empty(n_deps, dtype=np.int32)
    outs = np.empty((n_calls, S), dtype=np.int64)
    new = np.empty(S, dtype=np.int64)
    o = 0
    e = 0
    for c in range(n_calls):
        b = calls[c]
        base = first_id + o
        for j in range(b_op0[b], b_op0[b + 1]):
            code[o] = b_code[j]
            step[o] = b_step[j] + call_step[c] if b_rel[j] else b_step[j]
            lo = e
            for q in range(b_dptr[j], b_dptr[j + 1]):
                k = b_dkind[q]
                v = b_dval[q]
                if k == 0:
                    d = base + v
                elif k == 1:
                    d = state[v]
                else:
                    d = v
                # keep each op's producers sorted and distinct (state ids may come in any order)
                pos = e
                while pos > lo and deps[pos - 1] > d:
                    pos -= 1
                if pos > lo and deps[pos - 1] == d:
                    continue
                for r in range(e, pos, -1):
                    deps[r] = deps[r - 1]
                deps[pos] = d
                e += 1
            counts[o] = e - lo
            o += 1
        for i in range(S):
            k = b_okind[b, i]
            v = b_oval[b, i]
            if k == 0:
                new[i] = base + v
            elif k == 1:
                new[i] = state[v]
            elif k == 2:
                new[i] = v
            else:
                new[i] = -1
        for i in range(S):
            state[i] = new[i]
            outs[c, i] = new[i]
    return code, step, counts, deps[:e], outs


def replay(blocks: list[Block], calls: np.ndarray, call_step: np.ndarray, state: list[int | None],
           first_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ops of ``blocks[calls[c]]`` at step ``call_step[c]`` for each call in order, the first
    op getting id ``first_id``.

    Returns:
        (code, step, producer counts per op, producer ids, state after each call (calls x
        entries, -1 = empty)).
    """
    if not blocks or not len(calls):
        z = np.zeros(0, dtype=np.int64)
        return z.astype(np.int32), z.astype(np.int32), z, z.astype(np.int32), \
            np.zeros((0, len(state)), dtype=np.int64)
    sizes = np.array([len(b.code) for b in blocks], dtype=np.int64)
    b_op0 = np.concatenate([[0], np.cumsum(sizes)])
    b_dptr = np.concatenate([[0], np.cumsum(np.concatenate([np.diff(b.dptr) for b in blocks]))])
    calls = np.asarray(calls, dtype=np.int64)
    n_ops = int(sizes[calls].sum())
    n_deps = int(np.array([len(b.dval) for b in blocks], dtype=np.int64)[calls].sum())
    st = np.array([-1 if s is None else s for s in state], dtype=np.int64)
    return _replay(b_op0, np.concatenate([b.code for b in blocks]), np.concatenate([b.step for b in blocks]),
                   np.concatenate([b.step_relative for b in blocks]), b_dptr,
                   np.concatenate([b.dkind for b in blocks]), np.concatenate([b.dval for b in blocks]),
                   np.stack([b.okind for b in blocks]), np.stack([b.oval for b in blocks]),
                   calls, np.asarray(call_step, dtype=np.int64), st, int(first_id), n_ops, n_deps)
