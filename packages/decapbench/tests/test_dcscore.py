"""DCScore's rule, checked against numbers worked out by hand."""

from __future__ import annotations

import json
from fractions import Fraction as F

import pytest

from paperzoo.decapbench.dcscore import (
    Unit,
    image_scores,
    parse_matching,
    parse_units,
    parse_verification,
    precision_recall,
)


def f1(p, r):
    return 2 * p * r / (p + r) if p + r else 0


def test_precision_and_the_one_over_k_recall_rule():
    # 4 units over 4 oracle facts: units 0 and 1 both map to oracle 0 (k = 2), unit 2 is
    # wrong and unmatched, unit 3 is right and matches nothing (adds 1 above and below).
    p, r, f = precision_recall([1, 1, 0, 1], [0, 0, None, None], 4)
    assert p == pytest.approx(3 / 4) and r == pytest.approx((F(1, 2) + F(1, 2) + 1) / 5)
    assert f == pytest.approx(f1(0.75, 0.4), abs=1e-7)
    # a wrong unit still counts in k: unit 1 is wrong, unit 0 gets only 1/2
    assert precision_recall([1, 0], [0, 0], 2)[1] == pytest.approx(F(1, 2) / 2)
    assert precision_recall([], [], 3) == (0.0, 0.0, 0.0)


def test_image_scores_average_the_nine_pairs_worked_by_hand():
    """The tiny set's shapes_a: verifications v1 = v2 = [1,1,0,1], v3 = [1,0,0,1]; matchings
    m1 = m3 = [0,0,-,-], m2 = [0,1,-,-]; 4 oracle facts; unit 3 is not relevant.

    all units        P     R             F1
      v1|v2, m1|m3   3/4   (1/2+1/2+1)/5  12/23   (4 pairs)
      v1|v2, m2      3/4   (1+1+1)/5      2/3     (2 pairs)
      v3, m1|m3      1/2   (1/2+1)/5      3/8     (2 pairs)
      v3, m2         1/2   (1+1)/5        4/9     (1 pair)
    relevant (units 0-2; k over them; 4 oracle facts)
      v1|v2, m1|m3   2/3   1/4            4/11
      v1|v2, m2      2/3   1/2            4/7
      v3, m1|m3      1/3   1/8            2/11
      v3, m2         1/3   1/4            2/7
    """
    units = [Unit("a"), Unit("b"), Unit("c"), Unit("d", relevance=0)]
    v = [[1, 1, 0, 1], [1, 1, 0, 1], [1, 0, 0, 1]]
    m = [[0, 0, None, None], [0, 1, None, None], [0, 0, None, None]]
    s = image_scores(units, v, m, 4)
    f1_all = (4 * F(12, 23) + 2 * F(2, 3) + 2 * F(3, 8) + F(4, 9)) / 9
    f1_rel = (4 * F(4, 11) + 2 * F(4, 7) + 2 * F(2, 11) + F(2, 7)) / 9
    assert s["f1"] == pytest.approx(float(f1_all), abs=1e-7)
    assert s["f1_relevant"] == pytest.approx(float(f1_rel), abs=1e-7)
    assert s["precision"] == pytest.approx(float((6 * F(3, 4) + 3 * F(1, 2)) / 9))
    assert s["dcscore"] == pytest.approx(float((f1_all + f1_rel) / 2 * 100), abs=1e-5)
    assert s["dcscore"] == pytest.approx(43.674931, abs=1e-5)


def test_relevant_recall_uses_the_relevant_units_own_k():
    """Unit 0 (relevant) and unit 1 (not relevant) both match oracle 0. Over the relevant
    units alone oracle 0 has k = 1, so unit 0 earns 1 (the official script gives it the
    all-units weight 1/2)."""
    units = [Unit("a"), Unit("b", relevance=0)]
    s = image_scores(units, [[1, 1]], [[0, 0]], 2)
    assert s["recall_relevant"] == pytest.approx(1 / 2)  # 1 of 2 oracle facts, not 1/4
    assert s["recall"] == pytest.approx(1 / 2)  # 1/2 + 1/2 over all units


def test_units_are_read_from_fenced_or_bare_json_and_python_literals():
    text = 'Sure.\n```json\n[{"fact": "A cat.", "identifier": "cat_0", "relevance": 1},\n {"fact": "It is cute.", "relevance": "0"}, {"fact": "A mat."}]\n```'
    units = parse_units(text)
    assert [u.fact for u in units] == ["A cat.", "It is cute.", "A mat."]
    assert [u.relevance for u in units] == [1, 0, 1]  # missing relevance: relevant
    assert parse_units("[{'fact': 'x', 'relevance': 1}]") == [Unit("x", 1)]
    for bad in ("no list here", '[{"text": "x"}]', '[{"fact": "x", "relevance": 2}]'):
        with pytest.raises(ValueError):
            parse_units(bad)


def test_matchings_and_verifications_align_by_text_then_position():
    units = [Unit("A cat."), Unit("A mat.")]
    swapped = json.dumps([{"fact": "A mat.", "matched_oracle_id": "None"},
                          {"fact": "A cat.", "matched_oracle_id": "3"}])  # fmt: skip
    assert parse_matching(swapped, units, 4) == [3, None]
    reworded = '[{"fact": "a cat", "verification": 1}, {"fact": "a mat", "verification": 0}]'
    assert parse_verification(reworded, units) == [1, 0]
    with pytest.raises(ValueError, match="1 entries for 2 units"):  # a dropped unit
        parse_verification('[{"fact": "A cat.", "verification": 1}]', units)
    with pytest.raises(ValueError, match="not an oracle id"):
        parse_matching('[{"fact": "A cat.", "matched_oracle_id": 9}, {"fact": "A mat."}]', units, 4)
