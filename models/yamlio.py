"""Strict YAML loading into frozen dataclasses.

Every configuration in the project (model presets, precision policies, accelerator specs, sweeps)
goes through this module, so that one set of rules holds everywhere: duplicate keys and unknown
keys are errors, types are checked against the dataclass annotations, and every message names the
file and the dotted field path.

This module sits at the bottom of the import flow (models <- workloads <- hwsim) and needs no torch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml


class UserError(ValueError):
    """Bad input from the user: a file, field or argument that is missing, malformed or out of range.

    The message names what is wrong and what was expected, on one line. The command line catches
    this type (and only this type) and prints the message with exit status 2; any other exception
    is a bug and surfaces with its traceback. Subclasses ``ValueError`` so that callers catching
    ``ValueError`` keep working.
    """


class ConfigError(UserError):
    """A configuration file or mapping is invalid. The message names the file and the field."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    mapping: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            mark = key_node.start_mark
            raise ConfigError(
                f"{mark.name}:{mark.line + 1}: duplicate key {key!r} (each key may appear once)"
            )
        if isinstance(value_node, yaml.ScalarNode) and value_node.tag == _FLOAT_TAG:
            mapping[key] = _finite_float(loader, value_node, key)
        else:
            mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


_FLOAT_TAG = "tag:yaml.org,2002:float"


def _finite_float(loader: _StrictLoader, node: yaml.ScalarNode, key: Any = None) -> float:
    # ``.inf`` and ``.nan`` are valid YAML but never a valid size, rate or duration.
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        mark = node.start_mark
        field = f" {key}:" if key is not None else ""
        raise ConfigError(f"{mark.name}:{mark.line + 1}:{field} non-finite number {node.value!r} "
                          "(expected a finite number)")
    return value


_StrictLoader.add_constructor(_FLOAT_TAG, _finite_float)

# PyYAML follows YAML 1.1, where ``1.6e9`` and ``1e9`` are strings (it wants ``1.6e+9``). Units in
# config files are SI, so exponents are everywhere: resolve them as floats, as YAML 1.2 does.
_StrictLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file, rejecting duplicate keys.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or repeats a key.
    """
    return loads_yaml(read_config_text(path), source=str(path))


def read_config_text(path: str | Path) -> str:
    """A configuration file's text; ConfigError naming the file when it cannot be read."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text (YAML) file (byte {exc.start}: {exc.reason})") from exc


def loads_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text (duplicate keys rejected); ``source`` names it in errors."""
    loader = _StrictLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error_line(source, exc)) from exc
    finally:
        loader.dispose()


def _yaml_error_line(source: str, exc: yaml.YAMLError) -> str:
    """One line for a PyYAML error (its own message spans several lines and draws a caret)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{problem} ({context})" if context else problem
    return f"{where}: invalid YAML: {' '.join(str(text).split())}"


def from_dict(cls: type, data: Any, source: str = "<dict>", path: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively.

    Args:
        cls: a (frozen) dataclass type whose fields carry type annotations.
        data: the parsed mapping.
        source: file name for error messages.
        path: dotted field path of ``data`` inside the file (for nested calls).

    Returns:
        An instance of ``cls``; its ``__post_init__`` runs, so value checks there apply too.

    Raises:
        ConfigError: unknown key, missing required key, wrong type, or a value check failed.
    """
    where = f"{source}: {path}" if path else f"{source}:"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints, fields = _fields_of(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where} unknown key(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
            f"expected some of: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: {sub}: required key is missing")
            continue
        kwargs[name] = _convert(hints[name], data[name], source, sub)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where} {exc}") from exc


def replace_paths(obj: Any, changes: dict[str, Any], name: str, source: str,
                  open_maps: tuple[str, ...] = ()) -> Any:
    """A copy of dataclass ``obj`` with the fields at dotted paths set, checked as ``from_dict``
    checks them: each new value is converted to its field's type, and every dataclass on a
    changed path is rebuilt (its ``__post_init__`` runs, up to ``obj``'s own); nothing else is
    rebuilt.

    Args:
        changes: dotted path -> new value. name: names ``obj`` in path errors; source: names the
            result in value errors. open_maps: names of mapping-valued fields that may gain keys
            (e.g. rate tables); every other path must name an existing field.

    Raises:
        ConfigError: a path names no field, or a value or the result is invalid (field named).
    """
    tree: dict = {}
    for path, value in changes.items():
        parts = path.split(".")
        node, branch = obj, tree
        for i, key in enumerate(parts[:-1]):
            node = node.get(key) if isinstance(node, dict) else \
                getattr(node, key, None) if key in _names(node) else None
            if not (isinstance(node, dict) or dataclasses.is_dataclass(node)):
                raise ConfigError(f"{name}: {path}: {'.'.join(parts[: i + 1])} is not a section of the spec")
            branch = branch.setdefault(key, {})
            if not isinstance(branch, dict):
                raise ConfigError(f"{name}: {path}: {'.'.join(parts[: i + 1])} is set twice")
        known = sorted(node) if isinstance(node, dict) else sorted(_names(node))
        if parts[-1] not in known and not (isinstance(node, dict) and parts[-2:-1] and parts[-2] in open_maps):
            raise ConfigError(f"{name}: {path}: unknown field {parts[-1]!r}; fields here: {', '.join(known)}")
        branch[parts[-1]] = _Leaf(value)
    return _replace(obj, tree, source, "")


def _names(obj: Any) -> list[str]:
    return list(_fields_of(type(obj))[1]) if dataclasses.is_dataclass(obj) else []


class _Leaf:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _replace(obj: Any, tree: dict, source: str, path: str) -> Any:
    """``obj`` with ``tree``'s leaves set (paths checked by ``replace_paths``)."""
    if isinstance(obj, dict):
        return {**obj, **{key: leaf.value for key, leaf in tree.items()}}
    hints, _ = _fields_of(type(obj))
    new = {}
    for key, sub in tree.items():
        full = f"{path}.{key}" if path else key
        if isinstance(sub, _Leaf):
            new[key] = _convert(hints[key], sub.value, source, full)
        else:
            value = _replace(getattr(obj, key), sub, source, full)
            new[key] = _convert(hints[key], value, source, full) if isinstance(value, dict) else value
    try:
        return dataclasses.replace(obj, **new)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {path} {exc}" if path else f"{source}: {exc}") from exc


@functools.lru_cache(maxsize=None)
def _fields_of(cls: type) -> tuple[dict, dict]:
    # get_type_hints re-evaluates string annotations on every call: most of a load's time.
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls) if f.init}


def _convert(tp: Any, value: Any, source: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, source, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{source}: {path}: no type of {tp} fits {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: {path}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source, path)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {path}: expected a list, got {type(value).__name__}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, source, f"{path}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{source}: {path}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, source, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, v, source, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {path}: expected a mapping, got {type(value).__name__}")
        kt, vt = args if args else (Any, Any)
        return {_convert(kt, k, source, f"{path}.{k}"): _convert(vt, v, source, f"{path}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: {path}: unsupported field type {tp!r}")


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict/list structure (tuples become lists), the inverse of ``from_dict``."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def require(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless condition; for dataclass ``__post_init__`` checks."""
    if not condition:
        raise ValueError(message)


def preset_names(directory: Path) -> list[str]:
    """Names (file stems) of the ``*.yaml`` presets in ``directory``."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


def preset_file(name_or_path: str | Path, directory: Path, kind: str) -> Path:
    """The file of a preset name in ``directory``, or ``name_or_path`` itself if it has a suffix.

    Raises:
        ConfigError: a name that is not a preset; the message lists the presets of this ``kind``.
    """
    path = Path(name_or_path)
    if path.suffix:
        return path
    path = Path(directory) / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(
            f"unknown {kind} {str(name_or_path)!r}; choose one of: {', '.join(preset_names(directory))} "
            "(or give a path to a YAML file)"
        )
    return path


def load_preset(cls: type, name_or_path: str | Path, directory: Path, kind: str) -> Any:
    """Load dataclass ``cls`` from a preset name in ``directory`` or from a YAML path."""
    path = preset_file(name_or_path, directory, kind)
    return from_dict(cls, load_yaml(path), source=str(path))
