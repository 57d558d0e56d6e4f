"""Loading sweep definitions: every error names the field; planning, sampling, keys."""

import pytest

from dse_fakes import FAKE_SWEEP, SWEEPS
from hwsim.dse import load_sweep, loads_sweep, point_key
from models.yamlio import ConfigError

BASE = "base: {model: tiny, hw: rapid4, audio_s: 1, precision: int4, beam: 4, lm_fusion: dr}\n"


def load(text):
    return loads_sweep(BASE + text, source="s.yaml")


def test_fake_sweep_plans_the_full_grid():
    s = loads_sweep(FAKE_SWEEP)
    plan = s.plan()
    assert s.grid_size == 3 * 2 * 4 * 2 == len(plan.points) == plan.candidates
    assert s.vary[2] == ("hw.core.matrix.rows", (16, 32, 48, 64))   # range: stop exclusive
    # YAML 1.1 reads 25.6e9 as a string; it is taken as the number the spec field stores.
    assert s.vary[3][1] == (25.6e9, 51.2e9) and all(isinstance(v, float) for v in s.vary[3][1])
    assert len({p.key for p in plan.points}) == len(plan.points)
    p = plan.points[0].point
    assert p == {"model": "tiny", "hw": "rapid4", "audio_s": 2.0, "precision": "fp16", "beam": 1,
                 "lm_fusion": "dr", "method": "alsd", "hw.core.matrix.rows": 16,
                 "hw.dram_bw_bytes_per_s": 25.6e9}


def test_point_key_is_sha256_of_canonical_json_and_stable():
    point = {"model": "tiny", "hw": "rapid4", "audio_s": 1.0, "precision": "int4", "beam": 4,
             "lm_fusion": "dr", "method": "alsd", "hw.core.matrix.rows": 16}
    # Golden value: a change here breaks resuming every existing sweep directory.
    assert point_key(point) == point_key(dict(reversed(point.items())))
    assert point_key(point) == "7d5f0f526d8ef177657f3ad644439fed1f9b0963934453e9b3aab173f65b7915"
    import hashlib
    import json
    canon = json.dumps(point, sort_keys=True, separators=(",", ":"))
    assert point_key(point) == hashlib.sha256(canon.encode()).hexdigest()


def test_example_sweeps_load():
    for path in sorted(SWEEPS.glob("*.yaml")):
        s = load_sweep(path)
        assert s.plan().points, path


@pytest.mark.parametrize("text, fragment", [
    ("vary: {hw.core.matrix.rowz: [16]}\n", "unknown field 'rowz'"),
    ("vary: {hw.core.matrx.rows: [16]}\n", "core.matrx is not a section"),
    ("vary: {hw.core.matrix.rows: [16, 0]}\n", "vary.hw.core.matrix.rows[1]"),
    ("vary: {hw.core.matrix.rows: [16, 0]}\n", "rows must be >= 1"),
    ("vary: {hw.dram_bw_bytes_per_s: [fast]}\n", "expected a number"),
    ("vary: {hw.core.matrix.rows: [16, 16]}\n", "appears twice"),
    ("vary: {hw.core.matrix.rows: {range: [64, 16, 16]}}\n", "vary.hw.core.matrix.rows.range"),
    ("vary: {beams: [1]}\n", "unknown parameter 'beams'"),
    ("vary: {beam: [1, 0]}\n", "vary.beam[1]"),
    ("vary: {precision: [int4, int3]}\n", "unknown precision policy 'int3'"),
    ("vary: {model: [tiny, huge]}\n", "vary.model[1]: unknown model preset 'huge'"),
    ("vary: {hw: [rapid4, tpu9]}\n", "vary.hw[1]: unknown hardware preset 'tpu9'"),
    ("vary: {lm_fusion: [none, shallow]}\n", "vary.lm_fusion[1]"),
    ("vary: {method: [beam]}\n", "vary.method[0]"),
    ("vary: {audio_s: [1, -2]}\n", "vary.audio_s[1]"),
    ("vary: {beam: []}\n", "vary.beam: expected a non-empty list"),
    ("varry: {beam: [1]}\n", "unknown key(s) 'varry'"),
    ("sampling: {random: 0}\n", "sampling.random"),
    ("sampling: sobol\n", "sampling: expected grid"),
    ("constraints: ['__import__(\"os\").system(\"true\")']\n", "Call is not allowed"),
    ("constraints: ['onchip_bytez <= 1']\n", "unknown name(s) ['onchip_bytez']"),
    ("constraints: ['beam <= ']\n", "constraints[0]: invalid expression"),
    ("constraints: [{field: beam, maximum: 3}]\n", "constraints[0]: unknown key(s)"),
])
def test_loading_errors_name_the_field(text, fragment):
    with pytest.raises(ConfigError) as err:
        load(text)
    assert fragment in str(err.value)
    assert "s.yaml" in str(err.value)


def test_base_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"s.yaml: base.*beams"):
        loads_sweep("base: {model: tiny, hw: rapid4, audio_s: 1, precision: int4, beams: 4}\n", "s.yaml")
    with pytest.raises(ConfigError, match=r"s.yaml: base unknown key\(s\) 'beams'"):
        loads_sweep("base: {model: tiny, hw: rapid4, audio_s: 1, precision: int4, beam: 4, beams: 4}\n", "s.yaml")
    with pytest.raises(ConfigError, match=r"s.yaml: base.hw.core.matrix.cols"):
        loads_sweep(BASE.replace("}", ", hw.core.matrix.cols: -1}"), "s.yaml")


def test_duplicate_key_is_an_error():
    with pytest.raises(ConfigError, match=r"s.yaml:4: duplicate key 'beam'"):
        load("vary:\n  beam: [1]\n  beam: [4]\n")


def test_hw_path_checked_against_every_hw_preset():
    s = load("vary:\n  hw: [rapid4, edge]\n  hw.core.matrix.rows: [8, 16]\n")
    assert len(s.plan().points) == 4
    with pytest.raises(ConfigError, match="vary.hw.energy.dram_byte_j"):
        # host-cpu has no energy section: the path is checked on every preset of the sweep
        load("vary:\n  hw: [rapid4, host-cpu]\n  hw.energy.dram_byte_j: [1.0e-11]\n")


def test_constraints_filter_points():
    s = load("vary:\n  hw.core.matrix.rows: [16, 32, 64]\n  beam: [1, 4]\n"
             "constraints:\n  - 'hw.core.matrix.rows * hw.core.matrix.cols <= 1024 and beam in [1, 4]'\n"
             "  - {field: onchip_bytes, max: 1e9}\n")
    plan = s.plan()
    assert plan.candidates == 6 and plan.filtered == 2
    assert sorted({p.point["hw.core.matrix.rows"] for p in plan.points}) == [16, 32]


def test_random_sampling_is_seeded_and_distinct():
    text = "vary:\n  beam: [1, 2, 4, 8]\n  hw.core.matrix.rows: {range: [8, 72, 8]}\nsampling: {random: 10, seed: 3}\n"
    a, b = load(text).plan(), load(text).plan()
    assert [p.key for p in a.points] == [p.key for p in b.points]
    assert len({p.key for p in a.points}) == 10
    other = load(text.replace("seed: 3", "seed: 4")).plan()
    assert [p.key for p in other.points] != [p.key for p in a.points]
    assert len(load(text.replace("random: 10", "random: 1000")).plan().points) == 32


def test_groups_vary_linked_fields_together():
    s = load("vary:\n  beam: [1, 4]\n  array:\n    hw.core.matrix.rows: [16, 64]\n"
             "    hw.core.matrix.cols: [16, 64]\n    hw.core.matrix.macs_per_pe_per_cycle.int4: [4, 8]\n")
    assert s.varied == ["beam", "hw.core.matrix.rows", "hw.core.matrix.cols",
                        "hw.core.matrix.macs_per_pe_per_cycle.int4"]
    points = [p.point for p in s.plan().points]
    assert len(points) == 4
    assert {(p["hw.core.matrix.rows"], p["hw.core.matrix.cols"], p["hw.core.matrix.macs_per_pe_per_cycle.int4"])
            for p in points} == {(16, 16, 4.0), (64, 64, 8.0)}
    with pytest.raises(ConfigError, match="vary.array: members of a group need equally long"):
        load("vary:\n  array:\n    hw.core.matrix.rows: [16, 64]\n    hw.core.matrix.cols: [16]\n")
    with pytest.raises(ConfigError, match=r"vary.array.hw.core.matrix.cols\[1\]"):
        load("vary:\n  array:\n    hw.core.matrix.rows: [16, 64]\n    hw.core.matrix.cols: [16, -1]\n")
    with pytest.raises(ConfigError, match="already varied"):
        load("vary:\n  hw.core.matrix.rows: [8]\n  array:\n    hw.core.matrix.rows: [16]\n")
