"""Pareto fronts on hand-made point sets (ties, duplicates, max objectives) and against brute force."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.dse import pareto, pareto_mask


def frame(points, **extra):
    df = pd.DataFrame(points, columns=["rtf", "onchip_bytes"])
    df["name"] = [f"p{i}" for i in range(len(df))]
    for k, v in extra.items():
        df[k] = v
    return df


def names(df):
    return sorted(df["name"])


def test_two_objectives_hand_made_front():
    #        p0        p1        p2        p3 (dominated by p1)  p4 (dominated by p2)
    df = frame([(1, 10), (2, 5), (4, 1), (3, 6), (4, 2)])
    assert names(pareto(df, {"rtf": "min", "onchip_bytes": "min"})) == ["p0", "p1", "p2"]


def test_ties_in_one_objective():
    # p1 and p2 share rtf=2; p2 has more memory, so p1 dominates it. p3 ties p0 in memory only.
    df = frame([(1, 10), (2, 5), (2, 7), (3, 10)])
    assert names(pareto(df, {"rtf": "min", "onchip_bytes": "min"})) == ["p0", "p1"]


def test_duplicates_on_the_front_are_all_kept():
    df = frame([(1, 10), (1, 10), (2, 5), (2, 5), (3, 5)])
    assert names(pareto(df, {"rtf": "min", "onchip_bytes": "min"})) == ["p0", "p1", "p2", "p3"]


def test_max_objective_and_three_objectives():
    df = frame([(1, 10), (2, 5), (2, 5), (1, 10)], energy_j=[3.0, 1.0, 2.0, 1.0])
    # max onchip: p0 and p3 (rtf 1, 10 bytes) beat p1, p2 in both
    assert names(pareto(df, {"rtf": "min", "onchip_bytes": "max"})) == ["p0", "p3"]
    # three objectives: p3 dominates p0 (equal rtf and memory, less energy); p1 dominates p2
    assert names(pareto(df, {"rtf": "min", "onchip_bytes": "min", "energy_j": "min"})) == ["p1", "p3"]


def test_error_rows_and_missing_values_never_on_the_front():
    df = frame([(1, 1), (2, 2), (0.5, 5), (np.nan, 0)], status=["error", "ok", "ok", "ok"])
    assert names(pareto(df, {"rtf": "min", "onchip_bytes": "min"})) == ["p1", "p2"]


def test_result_is_sorted_and_keeps_all_columns():
    df = frame([(4, 1), (1, 10), (2, 5)])
    front = pareto(df, {"rtf": "min", "onchip_bytes": "min"})
    assert list(front["rtf"]) == [1, 2, 4] and list(front.columns) == list(df.columns)


@pytest.mark.parametrize("objectives, match", [
    ({"rtf": "min"}, "2 or 3 objectives"),
    ({"rtf": "min", "nope": "min"}, "unknown column 'nope'"),
    ({"rtf": "min", "onchip_bytes": "smallest"}, "must be 'min' or 'max'"),
])
def test_bad_objectives(objectives, match):
    with pytest.raises(ValueError, match=match):
        pareto(frame([(1, 2)]), objectives)


def brute_force(values):
    n = len(values)
    return np.array([not any(np.all(values[j] <= values[i]) and np.any(values[j] < values[i])
                             for j in range(n)) for i in range(n)], dtype=bool)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 3).flatmap(lambda d: st.lists(
    st.tuples(*[st.integers(0, 4)] * d), min_size=0, max_size=40)))
def test_matches_brute_force(points):
    values = np.array(points, dtype=float).reshape(len(points), -1) if points else np.empty((0, 2))
    assert np.array_equal(pareto_mask(values), brute_force(values))
