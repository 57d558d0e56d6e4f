"""A whole density-ratio fusion system: RNN-T + external LM + source LM, built from a config.

Parameter names, with the ``rnnt.``/``lm_ext.``/``lm_src.`` prefixes, are exactly those of
``models.params.parameter_table``. Initialisation is PyTorch's default scheme (LSTM and Linear
tensors uniform(-b, b) with b = 1/sqrt(hidden) resp. 1/sqrt(in_features); embeddings N(0, 1)),
drawn from one ``torch.Generator`` seeded with ``seed`` in parameter-table order, so a system is a
pure function of (config, seed) and does not touch the global RNG.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from models.config import ModelConfig, load_config
from models.lm import CharLM
from models.rnnt import RNNT
from models.yamlio import ConfigError, UserError, from_dict, to_dict

CHECKPOINT_FORMAT = "hwsim.system/1"
SUBMODELS = ("rnnt", "lm_ext", "lm_src")


class System:
    """RNN-T and its two LMs (all ``nn.Module``s, built in eval mode).

    Attributes:
        config: the ``ModelConfig``.
        rnnt: ``models.rnnt.RNNT``. lm_ext, lm_src: ``models.lm.CharLM``.
    """

    def __init__(self, config: ModelConfig, seed: int = 0) -> None:
        self.config = config
        self.rnnt = RNNT(config)
        self.lm_ext = CharLM(config.lm_ext, config.num_labels)
        self.lm_src = CharLM(config.lm_src, config.num_labels)
        self.reset_parameters(seed)
        self.eval()

    def submodels(self) -> dict[str, nn.Module]:
        return {"rnnt": self.rnnt, "lm_ext": self.lm_ext, "lm_src": self.lm_src}

    def reset_parameters(self, seed: int = 0) -> None:
        """Deterministic re-initialisation from ``seed`` (see module docstring)."""
        gen = torch.Generator().manual_seed(int(seed))
        for _, module in self.named_modules():
            reset = getattr(module, "reset_parameters", None)
            if reset is not None and any(True for _ in module.parameters(recurse=False)):
                reset(generator=gen)

    def named_modules(self) -> Iterator[tuple[str, nn.Module]]:
        """(dotted name, module) for every module, names prefixed ``rnnt``/``lm_ext``/``lm_src``."""
        for prefix, model in self.submodels().items():
            yield from model.named_modules(prefix=prefix)

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        for prefix, model in self.submodels().items():
            yield from model.named_parameters(prefix=prefix)

    def parameters(self) -> Iterator[nn.Parameter]:
        for _, p in self.named_parameters():
            yield p

    def eval(self) -> "System":
        for m in self.submodels().values():
            m.eval()
        return self

    def train(self, mode: bool = True) -> "System":
        for m in self.submodels().values():
            m.train(mode)
        return self

    def state_dict(self) -> dict:
        return {k: m.state_dict() for k, m in self.submodels().items()}

    def load_state_dict(self, state: dict) -> None:
        missing = [k for k in SUBMODELS if k not in state]
        if missing:
            raise ValueError(f"state dict lacks sub-models {missing}")
        for k, m in self.submodels().items():
            m.load_state_dict(state[k], strict=True)

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint: ``{"format", "config" (plain dict), "rnnt", "lm_ext", "lm_src"}``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"format": CHECKPOINT_FORMAT, "config": to_dict(self.config), **self.state_dict()}, path)
        return path

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"System({self.config.name!r}, {n:,} parameters)"


def _as_config(spec: str | Path | ModelConfig) -> ModelConfig:
    return spec if isinstance(spec, ModelConfig) else load_config(spec)


def _reason(exc: BaseException) -> str:
    """A short, one-line reason from a loader's exception (torch's messages run to paragraphs)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _read_checkpoint(path: str | Path) -> tuple[ModelConfig, dict]:
    """Read and check a ``System.save`` file.

    Raises:
        UserError: missing, a directory, unreadable (empty, truncated, not a torch file, an
            ``.npz`` export), not this format, or without a valid config; the message names the file.
    """
    import pickle
    import zipfile

    path = Path(path)
    what = f"a {CHECKPOINT_FORMAT} checkpoint (System.save .pt file)"
    if path.is_dir():
        raise UserError(f"{path}: is a directory; expected {what}")
    if not path.exists():
        raise UserError(f"{path}: no such file; expected {what}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if "manifest.npy" in z.namelist():
                raise UserError(f"{path}: is a quantized .npz export (hwsim quantize); expected {what}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from exc
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: not {what}: not a torch file (unpickling failed)") from exc
    except EOFError as exc:
        raise UserError(f"{path}: not {what}: empty or truncated file") from exc
    except (OSError, RuntimeError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not {what}: truncated or corrupt ({_reason(exc)})") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not {what} (no format {CHECKPOINT_FORMAT!r})")
    if not isinstance(data.get("config"), dict):
        raise UserError(f"{path}: checkpoint has no model config (key 'config')")
    return from_dict(ModelConfig, data["config"], source=f"{path}[config]"), data


def _shape(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"


def _listed(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")


def _load_weights(system: System, data: dict, path: str | Path) -> None:
    """Load a checkpoint's tensors; a mismatch with the config is one ``UserError`` line."""
    missing = [k for k in SUBMODELS if not isinstance(data.get(k), dict)]
    if missing:
        raise UserError(f"{path}: checkpoint lacks the weights of {', '.join(missing)}")
    for k, module in system.submodels().items():
        expected, got = module.state_dict(), data[k]
        absent = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = [f"{n} {_shape(got[n])} (config: {tuple(t.shape)})" for n, t in expected.items()
                 if n in got and (not isinstance(got[n], torch.Tensor) or got[n].shape != t.shape)]
        problems = [f"{what} {_listed(names)}" for what, names in
                    (("missing", absent), ("unexpected", extra), ("shape of", wrong)) if names]
        if problems:
            raise UserError(f"{path}: tensors of {k} do not match its config: {'; '.join(problems)}")
        module.load_state_dict(got, strict=True)


def build_system(spec: str | Path | ModelConfig, seed: int = 0,
                 checkpoint: str | Path | None = None) -> System:
    """Build a system from a preset name, YAML path or config (eval mode).

    Args:
        spec: preset name, YAML path or ``ModelConfig``.
        seed: initialisation seed (ignored for the loaded weights when ``checkpoint`` is given).
        checkpoint: optional ``System.save`` file whose weights are loaded; its config must equal
            the given one.

    Raises:
        ConfigError: unknown preset or invalid config (a model larger than
        ``models.config.MAX_PARAMETERS`` included). UserError: an unreadable checkpoint, or one
        whose config or tensors differ.
    """
    cfg = _as_config(spec)
    data = None
    if checkpoint is not None:  # read (and reject) before allocating anything
        ck_cfg, data = _read_checkpoint(checkpoint)
        if ck_cfg != cfg:
            raise UserError(f"{checkpoint}: checkpoint of model {ck_cfg.name!r}, whose config differs "
                            f"from that of model {cfg.name!r}; give the checkpoint's own model config")
    system = System(cfg, seed)
    if data is not None:
        _load_weights(system, data, checkpoint)
    return system


def load_system(path: str | Path) -> System:
    """Load a checkpoint written by ``System.save`` (config taken from the file)."""
    cfg, data = _read_checkpoint(path)
    system = System(cfg, 0)
    _load_weights(system, data, path)
    return system


def labels_to_text(config: ModelConfig, labels: Sequence[int]) -> str:
    """Labels 1..len(alphabet) -> characters; blanks dropped; labels without text form -> '?'."""
    alpha = config.alphabet
    return "".join(alpha[y - 1] if 0 < y <= len(alpha) else "?" for y in labels if y != config.blank)


def text_to_labels(config: ModelConfig, text: str) -> tuple[int, ...]:
    """Characters -> labels (1-based alphabet index); unknown characters raise ValueError."""
    index = {c: i + 1 for i, c in enumerate(config.alphabet)}
    try:
        return tuple(index[c] for c in text)
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the alphabet {config.alphabet!r}") from None


__all__ = ["System", "build_system", "load_system", "labels_to_text", "text_to_labels", "ConfigError"]
