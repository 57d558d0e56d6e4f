"""Export of a fake-quantized system to integer weights, and loading it back.

File format (one uncompressed ``.npz``; readable with numpy alone, no torch or pickle):

- ``manifest``: uint8 array holding UTF-8 JSON::

      {"format": "hwsim.qexport/1",
       "config": {...},            # the ModelConfig (models.yamlio.to_dict)
       "policy": {...},            # the PrecisionPolicy (to_dict)
       "weight_bytes": int,        # sum of the nbytes of every tensor array below
       "fp32_weight_bytes": int,   # 4 * number of parameter elements
       "tensors": [                # one per parameter, in models.params.parameter_table order
         {"name": "rnnt.encoder.layers.0.fwd.weight_ih", "module": "...", "role": "weight",
          "shape": [64, 32], "precision": "int4", "quantizer": "sawb", "granularity": "channel",
          "symmetric": true, "narrow_range": true, "qmin": -7, "qmax": 7,
          "layout": "int4x2",      # see below
          "scales": 64, "scale_dtype": "float32", "zero_point_dtype": null,
          "data_bytes": 1024, "scale_bytes": 256, "zero_point_bytes": 0}, ...],
       "activations": [            # one per activation slot
         {"module": "rnnt.encoder.layers.0.fwd", "slot": "q_input", "role": "input",
          "precision": "int4", "quantizer": "pact2", "qmin": -7, "qmax": 7,
          "scale": 0.31, "zero_point": 0.0, "alpha": 2.17}, ...]}

- ``<name>:data`` for every parameter; ``<name>:scale`` and ``<name>:zero_point`` for integer
  parameters (zero points only for asymmetric specs).

Layouts of ``:data``:

- ``int8``: int8 array of the parameter's shape (two's complement).
- ``int4x2`` / ``int2x4``: uint8 array (..., ceil(K * bits / 8)), packed along the last axis
  (K = shape[-1]), element k in byte ``k // per`` at bit ``bits * (k % per)`` (low bits first),
  two's complement, the last byte of a row padded with zero codes (``models.quant.packing``, the
  layout the integer kernels read).
- ``float32`` / ``float16``: numpy arrays; ``bfloat16`` as uint16 bit patterns; ``float8_e4m3``
  as uint8 bit patterns.

Scales: one per tensor, gate block (4 blocks of rows for LSTM weights) or row, at the policy's
``scale_precision`` (float32 / float16, bf16 as uint16 bits). Zero points: ``int8`` / ``int16`` /
``int32`` for ``zero_point_bits`` 8 / 16 / 32, packed like the data for 2 / 4 bits.
Dequantization: ``w = fl32(fl32(code - zero_point) * scale)`` with the scale of the code's group,
exactly what the fake quantizer computes, so a loaded system reproduces it bit for bit.

``weight_bytes`` equals ``models.quant.policy.storage_bytes`` of the model under the policy
(checked by the tests): activation quantizer parameters (a few floats per module, in the
manifest) are not counted, as the policy's storage does not count them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from models.quant.exportfile import FORMAT, read_export, read_manifest  # noqa: F401 (public here too)
from models.quant.packing import pack_bits, unpack_bits
from models.quant.policy import BITS, PrecisionPolicy
from models.quant.qsystem import WEIGHT_SLOTS, quant_slots, quantize
from models.quant.quantizers import FLOAT_DTYPES, IntQuantizer, Quantizer, _broadcast_groups
from models.yamlio import to_dict

__all__ = ["export", "load", "read_manifest", "pack_bits", "unpack_bits", "FORMAT"]


# --------------------------------------------------------------------------------------------
# float <-> storage arrays

_FLOAT_LAYOUT = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "float8_e4m3"}


def _float_array(t: torch.Tensor, precision: str) -> np.ndarray:
    t = t.detach().to(FLOAT_DTYPES[precision])
    if precision == "bf16":
        return t.view(torch.int16).numpy().view(np.uint16).copy()
    if precision == "fp8":
        return t.view(torch.uint8).numpy().copy()
    return t.numpy().copy()


def _float_tensor(a: np.ndarray, precision: str) -> torch.Tensor:
    if precision == "bf16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16).float()
    if precision == "fp8":
        return torch.from_numpy(a.copy()).view(torch.float8_e4m3fn).float()
    return torch.from_numpy(a.copy()).float()


def _zp_array(zp: np.ndarray, bits: int) -> np.ndarray:
    if bits in (2, 4):
        return pack_bits(zp.astype(np.int64), bits)
    return zp.astype({8: np.int8, 16: np.int16, 32: np.int32}[bits])


def _zp_values(a: np.ndarray, n: int, bits: int) -> np.ndarray:
    return unpack_bits(a, n, bits) if bits in (2, 4) else a


# --------------------------------------------------------------------------------------------


def _param_quantizers(qsys) -> dict[str, Quantizer]:
    """parameter name -> its weight / bias quantizer."""
    out = {}
    for module_name, _, slot, q in quant_slots(qsys, getattr(qsys, "quant_prefix", "")):
        if slot in WEIGHT_SLOTS:
            out[f"{module_name}.{WEIGHT_SLOTS[slot]}"] = q
    return out


def _role(name: str, qz: Quantizer | None) -> str:
    if qz is not None:
        return qz.role
    return "bias" if name.endswith(".bias") else "weight"


def export(qsys, path: str | Path) -> dict:
    """Write the integer export of a quantized system (format in the module docstring).

    Args:
        qsys: a system from :func:`models.quant.quantize` (``models.system.System``).
        path: output ``.npz`` file.

    Returns:
        The manifest (dict).

    Raises:
        ValueError: a stored scale would not reproduce the fake-quantized weights exactly
            (e.g. a learned clip with ``scale_precision`` other than fp32).
    """
    policy: PrecisionPolicy = qsys.quant_policy
    prefix = getattr(qsys, "quant_prefix", "")
    quantizers = _param_quantizers(qsys)
    arrays: dict[str, np.ndarray] = {}
    tensors, total, fp32_total = [], 0, 0
    for name, param in qsys.named_parameters():
        name = f"{prefix}{name}"
        if name.rsplit(".", 1)[-1] in ("alpha", "step"):
            continue  # learned clips of quantizers, not model parameters
        qz = quantizers.get(name)
        module = name.rsplit(".", 1)[0]
        role = _role(name, qz)
        spec = policy.spec(module, role)
        w = param.detach()
        entry = {"name": name, "module": module, "role": role, "shape": list(w.shape),
                 "precision": spec.precision, "quantizer": spec.quantizer,
                 "granularity": spec.granularity, "symmetric": spec.symmetric,
                 "narrow_range": spec.narrow_range}
        if spec.is_int:
            if not isinstance(qz, IntQuantizer):
                raise ValueError(f"{name}: policy says {spec.precision} but no integer quantizer is attached")
            with torch.no_grad():
                fq = qz(w) if not qz.frozen else qz._fixed(w)
                codes = qz.codes(w)
            scale_arr = _float_array(qz.scale, policy.scale_precision)
            stored_scale = _float_tensor(scale_arr, policy.scale_precision)
            zp = qz.zero_point.detach()
            deq = (codes.float() - _broadcast_groups(zp, w)) * _broadcast_groups(stored_scale, w)
            if not torch.equal(deq, fq):
                raise ValueError(f"{name}: stored {policy.scale_precision} scales do not reproduce the "
                                 "fake-quantized weight exactly")
            c = codes.numpy()
            data = c.astype(np.int8) if spec.bits == 8 else pack_bits(c.reshape(w.shape if w.dim() else (1,)), spec.bits)
            arrays[f"{name}:data"] = data
            arrays[f"{name}:scale"] = scale_arr
            entry.update(qmin=qz.qmin, qmax=qz.qmax, layout={8: "int8", 4: "int4x2", 2: "int2x4"}[spec.bits],
                         scales=int(qz.scale.numel()), scale_dtype=str(scale_arr.dtype),
                         zero_point_dtype=None, zero_point_bytes=0)
            if not spec.symmetric:
                zpa = _zp_array(zp.numpy().astype(np.int64), policy.zero_point_bits)
                arrays[f"{name}:zero_point"] = zpa
                entry.update(zero_point_dtype=str(zpa.dtype), zero_point_bytes=int(zpa.nbytes))
            entry.update(data_bytes=int(data.nbytes), scale_bytes=int(scale_arr.nbytes))
        else:
            data = _float_array(w, spec.precision)
            arrays[f"{name}:data"] = data
            entry.update(layout=_FLOAT_LAYOUT[spec.precision], scales=0, data_bytes=int(data.nbytes),
                         scale_bytes=0, zero_point_bytes=0)
        total += entry["data_bytes"] + entry["scale_bytes"] + entry["zero_point_bytes"]
        fp32_total += 4 * w.numel()
        tensors.append(entry)
    manifest = {
        "format": FORMAT,
        "config": to_dict(qsys.config) if hasattr(qsys, "config") else None,
        "policy": to_dict(policy),
        "prefix": prefix,
        "weight_bytes": total,
        "fp32_weight_bytes": fp32_total,
        "tensors": tensors,
        "activations": _activation_entries(qsys, prefix),
    }
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return manifest


def _activation_entries(qsys, prefix: str) -> list[dict]:
    out = []
    for module_name, _, slot, q in quant_slots(qsys, prefix):
        if slot in WEIGHT_SLOTS:
            continue
        e = {"module": module_name, "slot": slot, "role": q.role, "precision": q.spec.precision,
             "quantizer": q.spec.quantizer}
        if isinstance(q, IntQuantizer):
            e.update(qmin=q.qmin, qmax=q.qmax, scale=float(q.scale.reshape(-1)[0]),
                     zero_point=float(q.zero_point.reshape(-1)[0]), frozen=bool(q.frozen),
                     initialized=bool(q.initialized))
            if hasattr(q, "alpha"):
                e["alpha"] = float(q.alpha.detach().reshape(-1)[0])
            if hasattr(q, "step"):
                e["step"] = float(q.step.detach().reshape(-1)[0])
            if q.spec.fixed_range is not None:
                e["fixed_range"] = list(q.spec.fixed_range)
        out.append(e)
    return out



def load(path: str | Path, build_fn=None):
    """Rebuild a frozen fake-quantized system from an export.

    The parameters are the dequantized integer weights (float tensors: the stored values), every
    quantizer is frozen with the stored scales / activation parameters, eval mode.

    Args:
        path: an ``.npz`` written by :func:`export`.
        build_fn: ``build_fn(config) -> system`` (default ``models.system.build_system``).

    Raises:
        UserError: the file is not a valid export (``models.quant.exportfile.read_export``).
    """
    ex = read_export(path)
    arrays, manifest, config, policy = ex.arrays, ex.manifest, ex.config, ex.policy
    if build_fn is None:
        from models.system import build_system as build_fn
    qsys = quantize(build_fn(config), policy, mode="qat", prefix=manifest.get("prefix", ""))
    quantizers = _param_quantizers(qsys)
    params = dict(qsys.named_parameters())
    prefix = manifest.get("prefix", "")
    with torch.no_grad():
        for e in manifest["tensors"]:
            name, shape = e["name"], tuple(e["shape"])
            param = params[name[len(prefix):]]
            data = arrays[f"{name}:data"]
            if e["layout"] in ("int8", "int4x2", "int2x4"):
                bits = BITS[e["precision"]]
                codes = data.astype(np.int64) if bits == 8 else unpack_bits(
                    data, shape[-1] if shape else 1, bits).reshape(shape).astype(np.int64)
                qz = quantizers[name]
                scale = _float_tensor(arrays[f"{name}:scale"], policy.scale_precision)
                n = scale.numel()
                zp = (torch.from_numpy(_zp_values(arrays[f"{name}:zero_point"], n, policy.zero_point_bits)
                                       .astype(np.float32)) if f"{name}:zero_point" in arrays else torch.zeros(n))
                qz.scale.copy_(scale)
                qz.zero_point.copy_(zp)
                qz.initialized.fill_(True)
                qz.frozen = True
                w = (torch.from_numpy(codes).float() - _broadcast_groups(zp, param)) * _broadcast_groups(scale, param)
                param.copy_(w.reshape(param.shape))
            else:
                param.copy_(_float_tensor(data, e["precision"]).reshape(param.shape))
        acts = {(a["module"], a["slot"]): a for a in manifest["activations"]}
        for module_name, _, slot, q in quant_slots(qsys, prefix):
            if slot in WEIGHT_SLOTS or not isinstance(q, IntQuantizer):
                continue
            a = acts[(module_name, slot)]
            q.scale.fill_(a["scale"])
            q.zero_point.fill_(a["zero_point"])
            if "alpha" in a:
                q.alpha.fill_(a["alpha"])
            if "step" in a:
                q.step.fill_(a["step"])
            q.initialized.fill_(True)
            q.frozen = True
            q.observing = False
    qsys.eval()
    return qsys
