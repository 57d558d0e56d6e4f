"""Per-module overrides: the shipped ``int8-encoder`` example, and patterns that match no module."""

from __future__ import annotations

import dataclasses

import pytest

from models.config import load_config, presets
from models.features import random_features
from models.params import parameter_table
from models.quant import quant_slots, quantize
from models.quant.policy import (
    POLICY_DIR, Override, QuantSpec, check_overrides, load_policy, model_modules, storage_bytes, unmatched_overrides,
)
from models.yamlio import ConfigError


def test_int8_encoder_is_int4_with_the_encoder_at_int8():
    pol, int4, int8 = (load_policy(n) for n in ("int8-encoder", "int4", "int8"))
    assert pol.roles == int4.roles                       # everything else: the paper's int4
    (ov,) = pol.overrides
    assert ov.roles == {r: int8.roles[r] for r in ("weight", "input", "hidden")}
    # the roles not overridden are the same in int8 and int4: the encoder is int8's W8A8 exactly
    assert all(int8.roles[r] == int4.roles[r] for r in ("bias", "cell", "preact", "act", "output"))
    for cfg in (load_config("tiny"), load_config("swb300")):
        table = parameter_table(cfg)
        enc = [p for p in table if p.name.startswith("rnnt.encoder.")]
        rest = [p for p in table if not p.name.startswith("rnnt.encoder.")]
        assert enc and rest
        for p in table:
            want = (int8 if p in enc else int4).param_spec(p)
            assert pol.param_spec(p) == want, p.name
        # storage: the encoder as under int8, the rest as under int4 (two other policies' sums)
        assert storage_bytes(table, pol) == storage_bytes(enc, int8) + storage_bytes(rest, int4)


def test_int8_encoder_drives_the_fake_quantized_model(tiny):
    q = quantize(tiny, "int8-encoder", "ptq", calib_features=[random_features(tiny.config, 40, seed=1)])
    seen = set()
    for module, _, slot, quantizer in quant_slots(q):
        encoder = module.startswith("rnnt.encoder.")
        role = quantizer.role
        if role in ("weight", "input", "hidden"):
            assert quantizer.spec.precision == ("int8" if encoder else "int4"), (module, slot)
            seen.add(encoder)
        elif role in ("cell", "preact", "act", "output"):
            assert quantizer.spec.precision == "fp16", (module, slot)
    assert seen == {True, False}


def test_model_modules_are_the_modules_holding_parameters(tiny):
    # reference: the torch system's own modules with parameters of their own
    names = [n for n, m in tiny.named_modules() if list(m.parameters(recurse=False))]
    assert model_modules(parameter_table(tiny.config)) == names


@pytest.mark.parametrize("model", presets())
def test_shipped_policies_match_every_model(model):
    cfg = load_config(model)
    for name in ("int8-encoder", "int4", "fp16"):
        check_overrides(load_policy(name), cfg)     # no error


def _with(*patterns: str):
    base = load_policy("int8-encoder")
    extra = tuple(Override(p, {"weight": QuantSpec("int8", "max", "channel")}) for p in patterns)
    return dataclasses.replace(base, name="mine", overrides=base.overrides + extra)


def test_a_pattern_that_matches_no_module_is_an_error_naming_it():
    cfg = load_config("tiny")
    with pytest.raises(ConfigError) as err:
        check_overrides(_with("rnnt.encoder.layer.*"), cfg)
    msg = str(err.value)
    assert "override pattern 'rnnt.encoder.layer.*' matches no module" in msg
    assert "'mine'" in msg and "'tiny'" in msg and "rnnt.encoder.layers.0.fwd" in msg
    assert "\n" not in msg
    # containers hold no tensor: their name alone changes nothing
    with pytest.raises(ConfigError, match=r"'rnnt.encoder.layers.0' matches no module"):
        check_overrides(_with("rnnt.encoder.layers.0"), cfg)
    # every unmatched pattern is named, in order
    with pytest.raises(ConfigError, match=r"'lm_ext.layers.2' matches no module .*\(nor do 'joint.out', 'x'\)"):
        check_overrides(_with("lm_ext.layers.2", "rnnt.joint.out", "joint.out", "x"), cfg)
    assert unmatched_overrides(_with("lm_ext.layers.2", "lm_ext.layers.1"), model_modules(parameter_table(cfg))) \
        == ["lm_ext.layers.2"]
    # the same pattern is fine where the model has the module (swb300 has 6 encoder layers)
    check_overrides(_with("rnnt.encoder.layers.5.*"), load_config("swb300"))
    with pytest.raises(ConfigError, match=r"'rnnt.encoder.layers.5.\*' matches no module of model 'tiny'"):
        check_overrides(_with("rnnt.encoder.layers.5.*"), cfg)


def test_policy_file_with_a_typo(tmp_path):
    text = (POLICY_DIR / "int8-encoder.yaml").read_text()
    bad = tmp_path / "typo.yaml"
    bad.write_text(text.replace('"rnnt.encoder.layers.*"', '"rnnt.encoders.*"'))
    pol = load_policy(bad)                          # a valid file on its own ...
    with pytest.raises(ConfigError, match=r"'rnnt.encoders.\*' matches no module of model 'small'"):
        check_overrides(pol, load_config("small"))   # ... that does nothing for this model


def test_deciding_override_is_the_last_match():
    pol = _with("rnnt.encoder.layers.0.fwd")
    first, last = pol.overrides
    assert pol.deciding_override("rnnt.encoder.layers.0.fwd", "weight") is last
    assert pol.deciding_override("rnnt.encoder.layers.0.fwd", "input") is first   # last only sets weight
    assert pol.deciding_override("rnnt.encoder.layers.1.bwd", "weight") is first
    assert pol.deciding_override("rnnt.joint.out", "weight") is None
    assert pol.deciding_override("rnnt.encoder.layers.1.bwd", "cell") is None       # not overridden
