"""Trace a real decode into an ``OpGraph``: every aten op, its module, phase, step and dataflow.

A ``TorchDispatchMode`` sees each aten op that a ``models.decode`` call runs; forward pre/post hooks
on every sub-module of the system keep a stack of the module paths that are running, so each op is
attributed to its innermost module (``rnnt.encoder.layers.0.fwd``) and from that to a phase.

Dataflow edges follow storage identity: each recorded op becomes the producer of its outputs'
storages, so views (same storage) alias their base without any bookkeeping, and in-place ops
(``add_``, ``copy_``) become the new producer of the storage they write. Parameters are recognised
the same way (a map from storage address to parameter name), so ``weight.t()`` is the weight.

The hot path keeps the graph's columns as it goes (``OpGraph.from_arrays``): per op a template
code, a step and its producer ids, in flat ``array`` buffers (about 20 bytes an op), and per
distinct template its raw key (op name, module, phase, weight, ``torch.Size`` shapes and
``torch.dtype``s) -- an LSTM step repeats the same few templates thousands of times, so memory
grows with the templates plus a few bytes an op, not with a Python object per op. ``Op``
templates and their costs are built after the decode, once per template.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from workloads.costs import SOURCE_OPS, VIEW_OPS, costed_op
from workloads.graph import OpColumns, OpGraph

log = logging.getLogger(__name__)

_FOLD, _SOURCE, _RECORD, _RESHAPE, _CAST = 0, 1, 2, 3, 4
_Tensor = torch.Tensor

#: Module-path prefixes -> phase, first match wins; ops outside every module belong to the search.
PHASE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("rnnt.encoder", "encoder"),
    ("rnnt.prediction", "prediction"),
    ("rnnt.joint", "joint"),
    ("lm_ext", "lm_ext"),
    ("lm_src", "lm_src"),
)


def phase_of(module: str) -> str:
    """Phase of an op run (innermost) by module path ``module``; ``search`` if none matches."""
    for prefix, phase in PHASE_PREFIXES:
        if module.startswith(prefix):
            return phase
    return "search"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class OpRecorder(TorchDispatchMode):
    """Records every non-view aten op run under it (see the module docstring).

    Args:
        params: storage address -> (parameter name, bytes) of the parameters to recognise.
        step_fn: returns the current step index (``models.hooks.current_step``).

    Attributes:
        keys: (raw template key, weight bytes) per distinct template, in order of first use; the
            key is (name, module, phase, weight, input shapes, input dtypes, output shapes,
            output dtypes) as torch gives them.
        cols: the recorded ops in program order (``workloads.graph.OpColumns``: template code,
            step, producers sorted and distinct).
        stack: (module path, phase) of the running modules; the bottom entry is the search.
    """

    def __init__(self, params: dict[int, tuple[str, int]], step_fn: Callable[[], int]) -> None:
        super().__init__()
        self.params = params
        self.step_fn = step_fn
        self.keys: list[tuple[tuple, int]] = []
        self._codes: dict[tuple, int] = {}
        self.cols = OpColumns()                # template code, step, producers per op
        self.producers: dict[int, int] = {}
        self.stack: list[tuple[str, str]] = [("", "search")]
        self._actions: dict[Any, tuple[int, str]] = {}

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # By default every ``__torch_dispatch__`` call is wrapped in a dynamo-disable shim that
        # costs about as much as the recording itself; a decode never runs ``torch.compile``,
        # so the shim only slows the trace down (opt-out documented in torch's
        # ``TorchDispatchMode._should_skip_dynamo``).
        return False

    def _classify(self, func) -> tuple[int, str]:
        name = func.overloadpacket.__name__
        if name == "reshape":
            action = _RESHAPE  # a view unless the input's strides force a copy
        elif name == "to":
            action = _CAST  # a view when nothing changes, else a copy (a dtype cast)
        elif name in VIEW_OPS or (func.is_view and name not in SOURCE_OPS):
            action = _FOLD
        elif name in SOURCE_OPS:
            action = _SOURCE
        else:
            action = _RECORD
        self._actions[func] = (action, name)
        return action, name

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **kwargs) if kwargs else func(*args)
        action, name = self._actions.get(func) or self._classify(func)
        if action == _FOLD:
            return out
        if action == _CAST:
            # Not recorded (a cast is folded like a view), but a cast has a new storage: it carries
            # its input's values, so it keeps its input's producer; left alone, the storage would
            # keep the producer of whatever tensor last lived at that address (fake-quantized
            # FP16 slots cast at every step, and addresses are reused).
            ptr = out.untyped_storage().data_ptr()
            src = args[0].untyped_storage().data_ptr()
            if ptr != src:
                d = self.producers.get(src)
                if d is None:
                    self.producers.pop(ptr, None)
                else:
                    self.producers[ptr] = d
            return out
        if action == _SOURCE:
            if isinstance(out, _Tensor):
                self.producers.pop(out.untyped_storage().data_ptr(), None)
            return out
        if action == _RESHAPE:
            if out.untyped_storage().data_ptr() == args[0].untyped_storage().data_ptr():
                return out
            name = "clone"  # the reshape had to copy: record the copy

        ins: list[_Tensor] = []
        for a in args:
            if isinstance(a, _Tensor):
                ins.append(a)
            elif type(a) is list or type(a) is tuple:
                ins.extend(x for x in a if isinstance(x, _Tensor))
        if kwargs:
            for a in kwargs.values():
                if isinstance(a, _Tensor):
                    ins.append(a)

        producers = self.producers
        params = self.params
        deps: list[int] = []
        weight, weight_bytes = "", 0
        for t in ins:
            ptr = t.untyped_storage().data_ptr()
            d = producers.get(ptr)
            if d is not None:
                deps.append(d)
            else:
                p = params.get(ptr)
                if p is not None and p[1] > weight_bytes:
                    weight, weight_bytes = p

        if isinstance(out, _Tensor):
            outs: tuple = (out,)
        elif type(out) is tuple or type(out) is list:
            outs = tuple(o for o in out if isinstance(o, _Tensor))
        else:
            outs = ()  # e.g. ``item()``: a Python number

        module, phase = self.stack[-1]
        key = (name, module, phase, weight, tuple([t.shape for t in ins]), tuple([t.dtype for t in ins]),
               tuple([o.shape for o in outs]), tuple([o.dtype for o in outs]))
        c = self._codes.get(key)
        if c is None:  # ops that differ only in the step share one template
            c = self._codes[key] = len(self.keys)
            self.keys.append((key, weight_bytes))
        if len(deps) > 1:
            deps = sorted(set(deps))
        node = self.cols.append(c, self.step_fn(), deps)
        for o in outs:
            ptr = o.untyped_storage().data_ptr()
            if ptr:
                producers[ptr] = node
        return out

    # ------------------------------------------------------------------------------------------

    def to_graph(self, meta: dict | None = None) -> OpGraph:
        """Build the ``OpGraph`` of the recorded ops (costs from ``workloads.costs``)."""
        templates = [costed_op(name, phase, module, tuple(tuple(x) for x in ish), tuple(_dtype_name(d) for d in idt),
                               tuple(tuple(x) for x in osh), tuple(_dtype_name(d) for d in odt), weight, wbytes)
                     for (name, module, phase, weight, ish, idt, osh, odt), wbytes in self.keys]

        return OpGraph.from_arrays(templates, *self.cols.arrays(), meta)


def parameter_map(module: torch.nn.Module) -> dict[int, tuple[str, int]]:
    """Storage address -> (full parameter name, bytes) for every parameter of ``module``."""
    out: dict[int, tuple[str, int]] = {}
    for name, p in module.named_parameters():
        out[p.untyped_storage().data_ptr()] = (name, p.numel() * p.element_size())
    return out


class ModuleTracker:
    """Forward pre/post hooks on every named sub-module keeping ``recorder.stack`` current.

    Use as a context manager; the hooks are removed on exit, also after an error.
    """

    def __init__(self, root: torch.nn.Module, recorder: OpRecorder) -> None:
        self.root = root
        self.recorder = recorder
        self._handles: list = []

    def __enter__(self) -> ModuleTracker:
        stack = self.recorder.stack
        try:
            for name, mod in self.root.named_modules():
                if not name or type(mod) is torch.nn.Identity:
                    # The root's own code is the search; an Identity (an empty quantization
                    # slot) runs no aten op, and hooking it would only slow the decode down.
                    continue
                entry = (name, phase_of(name))

                def pre(_m, _a, entry=entry):
                    stack.append(entry)

                def post(_m, _a, _o, entry=entry):
                    # ``always_call`` runs this after an exception too; pop only our own entry.
                    if stack[-1] is entry:
                        stack.pop()

                self._handles.append(mod.register_forward_pre_hook(pre))
                self._handles.append(mod.register_forward_hook(post, always_call=True))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        del self.recorder.stack[1:]


def record(root: torch.nn.Module, fn: Callable[[], Any], step_fn: Callable[[], int] | None = None,
           meta: dict | None = None) -> tuple[OpGraph, Any]:
    """Run ``fn()`` under the recorder with module tracking on ``root``; return (graph, fn's result).

    Args:
        root: module whose sub-modules and parameters are tracked (names relative to it).
        fn: the computation to trace.
        step_fn: current step index; default ``models.hooks.current_step``.
        meta: stored as the graph's ``meta``.
    """
    if step_fn is None:
        from models.hooks import current_step as step_fn
    recorder = OpRecorder(parameter_map(root), step_fn)
    # Under the dispatch mode every op's tensors pass through Python objects, and the cyclic
    # garbage collector's runs over them cost 10-15% of the trace's CPU time (measured: small,
    # 6000 frames, beam 8, DR). Nothing in a decode relies on cycle collection, so it is paused
    # (reference counting still frees every tensor) and restored afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with ModuleTracker(root, recorder), recorder:
            result = fn()
        graph = recorder.to_graph(meta)
    finally:
        if gc_was_enabled:
            gc.enable()
    return graph, result


def trace(system, features: torch.Tensor, **search_kwargs) -> tuple[OpGraph, Any]:
    """Trace ``models.decode(system, features, **search_kwargs)`` into an ``OpGraph``.

    The decode runs under ``torch.inference_mode()`` (as ``models.decode`` itself does), where
    composite ops such as ``reshape`` and ``log_softmax`` reach the tracer undecomposed.

    Args:
        system: a ``models.system.System`` (sub-modules ``rnnt``, ``lm_ext``, ``lm_src``).
        features: (frames, input_dim) acoustic features at 10 ms frames.
        **search_kwargs: forwarded to ``models.decode`` (``beam``, ``lm_fusion``, ``method``, ...).

    Returns:
        (graph, the decode's ``DecodeResult``). ``graph.meta`` holds ``model``, ``frames`` (input
        feature frames), ``audio_s``, the search settings, ``search`` (its statistics summary) and
        ``search_stats`` (every step's ``StepStats``, ``SearchStats.to_dict(columns=True)``: what a
        streaming simulation of the traced decode replays, ``workloads.streaming``).
    """
    import models
    from models.hooks import current_step

    config = system.config
    frames = int(features.shape[0])
    meta: dict = {"model": config.name, "frames": frames,
                  "audio_s": frames * config.features.frame_shift_s, **search_kwargs}
    with torch.inference_mode():
        graph, result = record(system, lambda: models.decode(system, features, **search_kwargs),
                               current_step, meta)
    stats = getattr(result, "stats", None)
    if stats is not None:
        summary = stats.summary()
        graph.meta.update({k: summary[k] for k in ("method", "beam", "lm_fusion") if k in summary})
        graph.meta["search"] = summary
        graph.meta["search_stats"] = stats.to_dict(columns=True)
    return graph, result
