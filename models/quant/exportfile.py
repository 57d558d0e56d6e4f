"""Reading and checking a quantized export file (``.npz`` + JSON manifest) with numpy alone.

The one reader of the format written by ``models.quant.qexport.export`` (the format is described
there): ``models.quant.qexport.load`` (back to a torch system) and ``hwsim.funcsim.export``
(integer execution) both open files through :func:`read_export`, which checks, before anything
uses the file, that it is what it claims to be: a readable ``.npz`` holding a JSON manifest of
this format, a valid model config and precision policy, one tensor entry per parameter of that
config with the config's shapes, and arrays whose dtypes and sizes agree with the entries. Every
problem is one ``UserError`` line naming the file and what is wrong.

Needs no torch.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.config import ModelConfig
from models.quant.policy import PrecisionPolicy
from models.yamlio import UserError, from_dict

FORMAT = "hwsim.qexport/1"

#: layout -> (stored dtype, bits per code for packed layouts or None)
LAYOUTS = {
    "int8": (np.int8, None), "int4x2": (np.uint8, 4), "int2x4": (np.uint8, 2),
    "float32": (np.float32, None), "float16": (np.float16, None),
    "bfloat16": (np.uint16, None), "float8_e4m3": (np.uint8, None),
}
INT_LAYOUTS = ("int8", "int4x2", "int2x4")
_WHAT = f"a {FORMAT} export (.npz from `hwsim quantize`)"


@dataclass(frozen=True)
class ExportFile:
    """A checked export.

    Attributes:
        path: the file.
        manifest: the JSON manifest (dict).
        arrays: array name (``<param>:data``, ``<param>:scale``, ``<param>:zero_point``) -> array.
        config: the manifest's model config, parsed. policy: its precision policy, parsed.
    """

    path: Path
    manifest: dict
    arrays: dict
    config: ModelConfig
    policy: PrecisionPolicy


def _open_arrays(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir():
        raise UserError(f"{path}: is a directory; expected {_WHAT}")
    if not path.exists():
        raise UserError(f"{path}: no such file; expected {_WHAT}")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not {_WHAT}: not a zip/.npz file (empty, truncated or another format)")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if "manifest" not in names:
                with zipfile.ZipFile(path) as zf:
                    torch_file = any(n.endswith("/data.pkl") for n in zf.namelist())
                if torch_file:
                    raise UserError(f"{path}: is a torch checkpoint (System.save .pt); expected {_WHAT}")
                raise UserError(f"{path}: not {_WHAT}: no manifest array")
            return {k: z[k] for k in names}
    except UserError:
        raise
    except PermissionError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise UserError(f"{path}: not {_WHAT}: truncated or corrupt ({reason})") from exc


def _parse_manifest(path: Path, raw: np.ndarray) -> dict:
    try:
        manifest = json.loads(np.asarray(raw).tobytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: manifest is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: manifest is not valid JSON ({exc.msg} at line {exc.lineno} "
                        f"column {exc.colno})") from exc
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: manifest: expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != FORMAT:
        raise UserError(f"{path}: manifest.format is {manifest.get('format')!r}; expected {FORMAT!r}")
    for key, kind in (("config", dict), ("policy", dict), ("tensors", list), ("activations", list)):
        if not isinstance(manifest.get(key), kind):
            raise UserError(f"{path}: manifest.{key}: expected a JSON "
                            f"{'object' if kind is dict else 'list'}, got {manifest.get(key)!r:.60}")
    return manifest


def _entry_field(path: Path, where: str, entry: dict, key: str, kind: type | tuple):
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UserError(f"{path}: {where}.{key}: missing or of the wrong type ({value!r:.60})")
    return value


def _check_tensors(path: Path, manifest: dict, arrays: dict, config: ModelConfig) -> None:
    from models.params import parameter_table

    prefix = manifest.get("prefix", "") or ""
    expected = {f"{prefix}{p.name}": tuple(p.shape) for p in parameter_table(config)}
    seen: set[str] = set()
    for i, e in enumerate(manifest["tensors"]):
        where = f"manifest.tensors[{i}]"
        name = _entry_field(path, where, e, "name", str)
        shape = tuple(_entry_field(path, where, e, "shape", list))
        layout = _entry_field(path, where, e, "layout", str)
        _entry_field(path, where, e, "precision", str)
        if name not in expected:
            raise UserError(f"{path}: {where}: tensor {name!r} is not a parameter of model "
                            f"{config.name!r} (the manifest's config)")
        if shape != expected[name]:
            raise UserError(f"{path}: {name}: manifest shape {list(shape)} but the config gives "
                            f"{list(expected[name])}")
        if layout not in LAYOUTS:
            raise UserError(f"{path}: {name}: unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
        seen.add(name)
        dtype, bits = LAYOUTS[layout]
        data = arrays.get(f"{name}:data")
        if data is None:
            raise UserError(f"{path}: {name}: array {name}:data is missing")
        rows = math.prod(shape[:-1]) if shape else 1
        k = shape[-1] if shape else 1
        size = rows * math.ceil(k * bits / 8) if bits else math.prod(shape)
        if data.dtype != dtype or data.size != size:
            raise UserError(f"{path}: {name}:data is {data.dtype} with {data.size} elements; the manifest "
                            f"({layout}, shape {list(shape)}) needs {np.dtype(dtype).name} with {size}")
        if layout in INT_LAYOUTS:
            scales = _entry_field(path, where, e, "scales", int)
            scale = arrays.get(f"{name}:scale")
            if scale is None:
                raise UserError(f"{path}: {name}: array {name}:scale is missing")
            if scale.size != scales or scales < 1 or (shape and shape[0] % scales):
                raise UserError(f"{path}: {name}:scale has {scale.size} values; the manifest says {scales} "
                                f"(groups of the {shape[0] if shape else 1} rows)")
    absent = sorted(set(expected) - seen)
    if absent:
        raise UserError(f"{path}: manifest lacks {len(absent)} parameter(s) of model {config.name!r}: "
                        f"{', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}")
    listed = {f"{n}:{part}" for n in seen for part in ("data", "scale", "zero_point")}
    extra = sorted(k for k in arrays if k not in listed)
    if extra:
        raise UserError(f"{path}: array(s) not in the manifest: {', '.join(extra[:3])}")


def _check_activations(path: Path, manifest: dict) -> None:
    for i, a in enumerate(manifest["activations"]):
        where = f"manifest.activations[{i}]"
        for key in ("module", "slot", "precision"):
            _entry_field(path, where, a, key, str)
        if a["precision"].startswith("int"):
            for key in ("scale", "zero_point"):
                v = _entry_field(path, where, a, key, (int, float))
                if not math.isfinite(v) or (key == "scale" and v <= 0):
                    raise UserError(f"{path}: {where}.{key}: {v!r} is not a valid quantizer {key}")
            for key in ("qmin", "qmax"):
                _entry_field(path, where, a, key, (int, float))


def read_export(path: str | Path) -> ExportFile:
    """Open and check an export; see the module docstring for what is checked.

    Raises:
        UserError: anything wrong with the file (the message names the file and the field).
    """
    path = Path(path)
    arrays = _open_arrays(path)
    manifest = _parse_manifest(path, arrays.pop("manifest"))
    config = from_dict(ModelConfig, manifest["config"], source=f"{path}[manifest.config]")
    policy = from_dict(PrecisionPolicy, manifest["policy"], source=f"{path}[manifest.policy]")
    _check_tensors(path, manifest, arrays, config)
    _check_activations(path, manifest)
    return ExportFile(path, manifest, arrays, config, policy)


def read_manifest(path: str | Path) -> dict:
    """The checked JSON manifest of an export."""
    return read_export(path).manifest
