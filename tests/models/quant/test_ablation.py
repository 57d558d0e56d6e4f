"""The per-role ablation variants (``models.quant.ablation``): each is ``int4`` with exactly its
roles changed, to the naive choice that ``int4-naive`` makes for them."""

from __future__ import annotations

import pytest

from models.quant.ablation import ABLATIONS, ablation, ablation_policy
from models.quant.policy import ROLES, load_policy


def test_each_variant_changes_only_its_roles_to_the_naive_choice():
    base, naive = load_policy("int4"), load_policy("int4-naive")
    assert len({a.name for a in ABLATIONS}) == len(ABLATIONS)
    for a in ABLATIONS:
        pol = ablation_policy(a.name)
        assert pol.name == f"int4-{a.name}"
        changed = {r for r in ROLES if pol.roles[r] != base.roles[r]}
        assert changed == set(a.roles), a.name
        for role in a.roles:
            spec, ref = pol.roles[role], naive.roles[role]
            # the naive quantizer (min-max per tensor, asymmetric); only cell-int8 keeps 8 bits
            assert (spec.quantizer, spec.granularity, spec.symmetric) == (ref.quantizer, ref.granularity, ref.symmetric)
            assert spec.precision == ("int8" if a.name == "cell-int8" else ref.precision)


def test_the_issue_lists_every_role_choice_once():
    changed = {r for a in ABLATIONS for r in a.roles}
    assert changed == {"weight", "embedding", "input", "hidden", "cell", "preact", "act"}
    with pytest.raises(ValueError, match="unknown ablation 'bias-minmax'; known: weights-minmax"):
        ablation("bias-minmax")
