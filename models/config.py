"""Model configurations: frozen dataclasses loaded from YAML presets in ``models/presets/``.

A ``ModelConfig`` describes a whole density-ratio-fusion system: the RNN-T (encoder, prediction
network, joint) and its two character LMs (external = target domain, source = acoustic training
transcripts). It needs no torch, so the analytic graph builder and the cost model read it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.yamlio import load_preset, preset_names, require

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class FeatureConfig:
    """Acoustic front end as seen by the encoder.

    Attributes:
        input_dim: feature dimension per 10 ms frame (e.g. 120 = 40 log-mel + deltas + double deltas).
        frame_shift_s: time between input frames, in seconds.
        stack: number of consecutive frames concatenated into one encoder input vector.
        stride: frames advanced between stacked vectors (stack 2, stride 2 halves the frame rate).
    """

    input_dim: int
    frame_shift_s: float = 0.01
    stack: int = 1
    stride: int = 1

    def __post_init__(self) -> None:
        require(self.input_dim > 0, f"input_dim must be > 0, got {self.input_dim}")
        require(self.frame_shift_s > 0, f"frame_shift_s must be > 0, got {self.frame_shift_s}")
        require(self.stack >= 1 and self.stride >= 1, "stack and stride must be >= 1")


@dataclass(frozen=True)
class EncoderConfig:
    """Stacked LSTM encoder.

    Attributes:
        layers: number of LSTM layers.
        hidden: cells per direction.
        bidirectional: two directions per layer, outputs concatenated (2 * hidden).
        time_reduction: factor by which the frame rate is reduced inside the encoder (1 = none).
        time_reduction_after: the reduction is applied to the output of this many layers.
        time_reduction_method: ``concat`` joins consecutive frames (input width grows by the factor,
            adding parameters); ``stride`` keeps every factor-th frame; ``mean`` averages them.
    """

    layers: int
    hidden: int
    bidirectional: bool
    time_reduction: int = 1
    time_reduction_after: int = 0
    time_reduction_method: Literal["concat", "stride", "mean"] = "stride"

    def __post_init__(self) -> None:
        require(self.layers >= 1, f"encoder.layers must be >= 1, got {self.layers}")
        require(self.hidden >= 1, f"encoder.hidden must be >= 1, got {self.hidden}")
        require(self.time_reduction >= 1, "encoder.time_reduction must be >= 1")
        if self.time_reduction > 1:
            require(
                1 <= self.time_reduction_after < self.layers,
                f"encoder.time_reduction_after must be in [1, {self.layers - 1}], "
                f"got {self.time_reduction_after}",
            )

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_dim(self) -> int:
        return self.hidden * self.directions


@dataclass(frozen=True)
class PredictionConfig:
    """Prediction network: label embedding followed by LSTM layers."""

    embed_dim: int
    layers: int
    hidden: int

    def __post_init__(self) -> None:
        require(min(self.embed_dim, self.layers, self.hidden) >= 1, "prediction sizes must be >= 1")


@dataclass(frozen=True)
class JointConfig:
    """Joint network ``W_out tanh(W_enc e + b_enc + W_pred p) + b_out``; ``dim`` is its width."""

    dim: int

    def __post_init__(self) -> None:
        require(self.dim >= 1, "joint.dim must be >= 1")


@dataclass(frozen=True)
class LMConfig:
    """Character LSTM language model over the RNN-T's labels (index 0 = sentence boundary)."""

    embed_dim: int
    layers: int
    hidden: int

    def __post_init__(self) -> None:
        require(min(self.embed_dim, self.layers, self.hidden) >= 1, "lm sizes must be >= 1")


@dataclass(frozen=True)
class FusionConfig:
    """Default density-ratio fusion weights (score = log p_rnnt + le log p_ext - ls log p_src + beta)."""

    lambda_ext: float = 0.0
    lambda_src: float = 0.0
    length_reward: float = 0.0


#: Largest model accepted, in parameters (4 GB of FP32 weights; ``swb300`` has about 60 M). A
#: config far beyond this is a typo, rejected before anything is built, traced or costed.
MAX_PARAMETERS = 1_000_000_000


@dataclass(frozen=True)
class ModelConfig:
    """A whole RNN-T + density-ratio fusion system.

    Attributes:
        name: preset name.
        num_labels: output classes of the joint, blank included (blank is index 0).
        alphabet: characters of labels 1..len(alphabet), for text <-> label conversion.
        features, encoder, prediction, joint: the RNN-T.
        lm_ext: external (target-domain) LM; lm_src: source (acoustic-training-text) LM.
        fusion: default fusion weights.
    """

    name: str
    num_labels: int
    features: FeatureConfig
    encoder: EncoderConfig
    prediction: PredictionConfig
    joint: JointConfig
    lm_ext: LMConfig
    lm_src: LMConfig
    alphabet: str = "abcdefghijklmnopqrstuvwxyz' "
    fusion: FusionConfig = FusionConfig()

    def __post_init__(self) -> None:
        require(self.num_labels >= 2, f"num_labels must be >= 2 (blank + 1), got {self.num_labels}")
        require(
            len(self.alphabet) <= self.num_labels - 1,
            f"alphabet has {len(self.alphabet)} characters but only {self.num_labels - 1} "
            "non-blank labels exist",
        )
        require(len(set(self.alphabet)) == len(self.alphabet), "alphabet repeats a character")
        from models.params import parameter_table  # imports this module: deferred

        n = sum(p.numel for p in parameter_table(self))
        require(n <= MAX_PARAMETERS, f"{n:,} parameters ({4 * n / 1e9:.3g} GB at FP32) is too large; "
                f"at most {MAX_PARAMETERS:,} (check the sizes: hidden, embed_dim, dim, input_dim)")

    @property
    def blank(self) -> int:
        return 0

    @property
    def encoder_input_dim(self) -> int:
        return self.features.input_dim * self.features.stack


# --------------------------------------------------------------------------------------------
# Frame counts through the encoder: the one definition that the torch encoder (models.rnnt), its
# integer simulation (hwsim.funcsim), the analytic graph builder and the search-statistics model
# (workloads) use.


def stacked_frames(frames: int, stack: int, stride: int) -> int:
    """Frames after frame stacking: ``stack`` consecutive frames every ``stride`` frames; output
    frame j holds input frames ``j*stride .. j*stride + stack - 1``, and trailing frames that do
    not fill a stack are dropped: ``(frames - stack) // stride + 1``.

    Raises:
        ValueError: fewer than ``stack`` frames.
    """
    if frames < stack:
        raise ValueError(f"need at least {stack} feature frames to stack, got {frames}")
    return (frames - stack) // stride + 1


def reduced_frames(frames: int, factor: int, method: str) -> int:
    """Frames after time reduction by ``factor``: ``stride`` keeps frames 0, factor, 2 factor, ...
    (``ceil(frames / factor)``); ``concat`` and ``mean`` join or average whole groups (a trailing
    partial group is dropped: ``frames // factor``).

    Raises:
        ValueError: an unknown method.
    """
    if method == "stride":
        return -(-frames // factor)
    if method in ("concat", "mean"):
        return frames // factor
    raise ValueError(f"unknown time reduction method {method!r}")


def encoder_frames(config: ModelConfig, frames: int) -> int:
    """Encoder output frames for ``frames`` input feature frames (stacking, then time reduction).

    Raises:
        ValueError: no output frame (the message names the model and what consumed the frames).
    """
    f, enc = config.features, config.encoder
    t = stacked_frames(frames, f.stack, f.stride) if frames >= f.stack else 0
    if t >= 1 and enc.time_reduction > 1:
        t = reduced_frames(t, enc.time_reduction, enc.time_reduction_method)
    if t < 1:
        raise ValueError(f"{frames} input frames give no encoder output frame for model {config.name!r} "
                         f"(stack {f.stack}, stride {f.stride}, time reduction {enc.time_reduction}); "
                         "give more audio")
    return t


def presets() -> list[str]:
    """Names of the model presets shipped in ``models/presets/``."""
    return preset_names(PRESET_DIR)


def load_config(name_or_path: str | Path) -> ModelConfig:
    """Load a model config from a preset name or a YAML path.

    Raises:
        ConfigError: unknown preset, unreadable file, or invalid content (file and field named).
    """
    return load_preset(ModelConfig, name_or_path, PRESET_DIR, "model preset")
