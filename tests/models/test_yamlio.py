"""Strict YAML loading: duplicate keys, unknown keys, types and value checks name file and field."""

from dataclasses import dataclass

import pytest

from models.config import PRESET_DIR, load_config, presets
from models.yamlio import ConfigError, from_dict, loads_yaml, require, to_dict


@dataclass(frozen=True)
class Inner:
    rate_hz: float
    name: str = "x"


@dataclass(frozen=True)
class Outer:
    inner: Inner
    sizes: tuple[int, ...] = ()
    table: dict[str, Inner] | None = None

    def __post_init__(self):
        require(all(s > 0 for s in self.sizes), f"sizes must be > 0, got {self.sizes}")


def test_duplicate_key_is_rejected_with_line():
    with pytest.raises(ConfigError, match=r"f.yaml:3: duplicate key 'a'"):
        loads_yaml("a: 1\nb: 2\na: 3\n", source="f.yaml")


def test_nested_duplicate_key_is_rejected():
    with pytest.raises(ConfigError, match="duplicate key 'x'"):
        loads_yaml("top:\n  x: 1\n  x: 2\n")


def test_unknown_key_names_path_and_choices():
    with pytest.raises(ConfigError, match=r"f.yaml: inner unknown key\(s\) 'rate' .*expected some of: name, rate_hz"):
        from_dict(Outer, {"inner": {"rate": 1}}, source="f.yaml")


def test_type_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"inner.rate_hz: expected a number"):
        from_dict(Outer, {"inner": {"rate_hz": "fast"}}, source="f.yaml")
    with pytest.raises(ConfigError, match=r"sizes\[1\]: expected an integer"):
        from_dict(Outer, {"inner": {"rate_hz": 1}, "sizes": [1, 2.5]}, source="f.yaml")
    with pytest.raises(ConfigError, match=r"inner.rate_hz: required key is missing"):
        from_dict(Outer, {"inner": {}}, source="f.yaml")


def test_value_checks_run_and_name_the_file():
    with pytest.raises(ConfigError, match=r"f.yaml: sizes must be > 0"):
        from_dict(Outer, {"inner": {"rate_hz": 1}, "sizes": [0]}, source="f.yaml")


def test_round_trip_through_to_dict():
    obj = from_dict(Outer, {"inner": {"rate_hz": 2}, "sizes": [1, 2], "table": {"a": {"rate_hz": 3.5}}})
    assert obj.inner.rate_hz == 2.0 and isinstance(obj.inner.rate_hz, float)
    assert obj.sizes == (1, 2)
    assert from_dict(Outer, to_dict(obj)) == obj


def test_every_model_preset_loads():
    assert {"tiny", "small", "swb300", "swb300-stream"} <= set(presets())
    for name in presets():
        assert load_config(name).name == name


def test_model_config_errors_name_file_and_field(tmp_path):
    text = (PRESET_DIR / "tiny.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  hidden: 16\n  bidirectional", "  hidden: -16\n  bidirectional", 1))
    with pytest.raises(ConfigError, match=r"bad.yaml: encoder encoder.hidden must be >= 1"):
        load_config(bad)
    bad.write_text(text + "encoder_layers: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key\(s\) 'encoder_layers'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="unknown model preset 'nope'"):
        load_config("nope")


def test_exponent_numbers_are_floats():
    # YAML 1.1 (PyYAML's default) would read these as strings.
    assert loads_yaml("a: 1.6e9\nb: 1e9\nc: -2e-3\nd: 10\ne: e9") == {"a": 1.6e9, "b": 1e9, "c": -2e-3, "d": 10, "e": "e9"}


@pytest.mark.parametrize("text, where", [
    ("inner: {rate_hz: .inf}\n", "f.yaml:1: rate_hz:"),
    ("inner:\n  rate_hz: -.Inf\n", "f.yaml:2: rate_hz:"),
    ("inner: {rate_hz: 1}\nsizes: [1, .nan]\n", "f.yaml:2:"),
])
def test_non_finite_numbers_are_rejected_with_line_and_key(text, where):
    with pytest.raises(ConfigError, match="non-finite") as info:
        from_dict(Outer, loads_yaml(text, source="f.yaml"), source="f.yaml")
    assert str(info.value).startswith(where)


def test_non_finite_numbers_are_rejected_from_mappings_too():
    with pytest.raises(ConfigError, match=r"^m: inner.rate_hz: expected a finite number, got inf$"):
        from_dict(Outer, {"inner": {"rate_hz": float("inf")}}, source="m")


def test_yaml_syntax_errors_are_one_line_with_file_line_and_column():
    with pytest.raises(ConfigError) as info:
        loads_yaml("a: 1\nb: [1, 2\n", source="f.yaml")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("f.yaml:3:1: invalid YAML: ")


def test_config_errors_are_user_errors():
    from models.yamlio import UserError

    assert issubclass(ConfigError, UserError) and issubclass(UserError, ValueError)
