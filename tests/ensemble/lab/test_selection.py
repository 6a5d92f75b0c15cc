"""The lab's selection of member recipes: the guard a candidate must pass, and how it scores out-of-fold logits."""

import json

import numpy as np
import pytest

from tests.ensemble.test_heads import CACHE_ROWS


def test_the_selection_record_is_written_only_over_the_data_the_weights_were_made_from(tmp_path):
    from ensemble.lab.selection import MissingViews, write_manifest

    cache, weights = tmp_path / "cache", tmp_path / "weights"
    cache.mkdir()
    weights.mkdir()
    (cache / "index.json").write_text(json.dumps({"data_manifest_sha256": {"pool": "abc"}, "rows": CACHE_ROWS}))
    (weights / "manifest.json").write_text(json.dumps({"data": {"data_sets": {"pool": "abc"}}}))
    table = {"seeds": [0, 1], "recipes": {"r": {"unseen_auc": {"median": 0.7, "min": 0.6, "max": 0.8}}}}
    write_manifest(str(weights), str(cache), table, "python -m ensemble.lab.selection ...")
    written = json.loads((weights / "manifest.json").read_text())
    assert written["data"]["held_out_test_groups"] == ["pool:b"]
    assert written["selection"]["recipes"] == table["recipes"] and written["selection"]["seeds"] == [0, 1]
    (weights / "manifest.json").write_text(json.dumps({"data": {"data_sets": {"pool": "other"}}}))
    with pytest.raises(MissingViews, match="other data"):
        write_manifest(str(weights), str(cache), table, "")


def test_a_recipe_replaces_the_shipped_one_only_if_it_gains_and_keeps_within_group_auc_size_bias_and_familiar():
    from ensemble.lab.selection import SHIPPED, improvements

    def row(logloss, within, big_real, familiar=0.30, width=0.01):
        values = {"unseen_logloss": logloss, "within_group_auc": within, "big_real_fake": big_real}
        if familiar is not None:
            values["familiar_logloss"] = familiar
        return {key: {"median": v, "min": v - width, "max": v + width} for key, v in values.items()}

    table = {
        SHIPPED: row(0.514, 0.717, 0.381),
        "better": row(0.490, 0.720, 0.380),
        "inside the noise": row(0.506, 0.730, 0.350),
        "pooled gain only": row(0.481, 0.700, 0.380),  # the trio with pixel relations: lost on the test sources
        "size bias": row(0.481, 0.717, 0.410),
        # a lower median whose range still overlaps the shipped one's is noise, not a gain
        "median below, ranges overlap": row(0.500, 0.730, 0.350),
        # within the shipped seed ranges (below its median AUC, above its median bias) is no loss
        "inside both ranges": row(0.490, 0.710, 0.388),
        "worse on both guards": row(0.481, 0.690, 0.450),
        # the telegram-only, size-per-class candidate: no gain on the test sources, worse on real-vs-ai
        "familiar loss": row(0.490, 0.720, 0.370, familiar=0.35),
        "familiar within the noise": row(0.490, 0.720, 0.370, familiar=0.309),
        "familiar not recorded": row(0.490, 0.720, 0.370, familiar=None),  # records written before that condition
    }
    assert improvements(table) == {
        "better": "yes",
        "inside the noise": "no gain beyond the noise",
        "median below, ranges overlap": "no gain beyond the noise",
        "inside both ranges": "yes",
        "worse on both guards": "worse within groups",
        "pooled gain only": "worse within groups",
        "size bias": "more big REAL photos look FAKE",
        "familiar loss": "worse on the familiar sources",
        "familiar within the noise": "yes",
        "familiar not recorded": "yes",
    }
    assert improvements({"better": row(0.49, 0.72, 0.38)}) == {}  # no reference, no verdicts
    # a gain that other sets of source groups would not show: the candidate's interval held 0 (-0.005 to +0.021)
    gains = {
        "better": {"gain": 0.009, "low": -0.005, "high": 0.021},
        "inside both ranges": {"gain": 0.02, "low": 0.004, "high": 0.03},
    }
    judged = improvements(table, group_gains=gains)
    assert judged["better"] == "no gain over other source groups" and judged["inside both ranges"] == "yes"
    assert judged["familiar loss"] == "worse on the familiar sources"  # recipes without a gain keep their verdicts


def test_the_guard_holds_candidates_against_the_members_that_ship():
    from ensemble.build import MEMBERS
    from ensemble.lab.selection import SHIPPED, variants

    recipes = variants()
    assert [recipes[name] for name in SHIPPED.split(" + ")] == list(MEMBERS.values())


def test_selection_scores_the_size_bias_and_the_unsure_share_the_band_would_leave():
    from ensemble.lab.selection import scored

    rng = np.random.default_rng(3)
    n = 2000
    labels = np.arange(n) % 2
    sources = np.where(np.arange(n) % 4 < 2, "games", "cifake")  # games is an unseen source, cifake is not
    groups = np.where(np.arange(n) % 8 < 4, sources, sources + "_b")
    long_side = np.where(rng.random(n) < 0.5, 1280, 256)
    clear = scored(6.0 * (labels - 0.5) + rng.normal(0, 0.5, n), labels, sources, long_side, groups)
    assert clear["unseen_unsure"] < 0.05 and clear["unseen_auc"] > 0.99 and clear["big_real_fake"] == 0.0
    assert clear["familiar_logloss"] < 0.1  # the cifake rows
    # a weak signal, and big REAL pictures pushed towards FAKE: wide band, many UNSURE, the size bias shows
    weak = 1.5 * (labels - 0.5) + rng.normal(0, 1.0, n) + 1.5 * ((labels == 0) & (long_side == 1280))
    murky = scored(weak, labels, sources, long_side, groups)
    assert murky["unseen_unsure"] > 0.5 and murky["big_real_fake"] > 0.3
    assert 0.6 < murky["within_group_auc"] < 0.75


def test_a_gain_that_one_source_group_carries_does_not_hold_when_the_groups_are_drawn_again():
    from ensemble.lab.selection import source_group_gain

    rng = np.random.default_rng(5)
    groups = np.repeat([f"game_{i}" for i in range(12)], 100)
    labels = np.tile(np.arange(100) % 2, 12)
    sources = np.where(np.arange(1200) < 1100, "games", "cifake")  # the last group is familiar: not counted
    reference = np.where(labels == 1, 0.6, 0.4) + rng.uniform(-0.05, 0.05, 1200)
    everywhere = np.where(labels == 1, 0.7, 0.3) + rng.uniform(-0.05, 0.05, 1200)
    steady = source_group_gain(everywhere, reference, labels, groups, sources)
    assert 0 < steady["low"] <= steady["gain"] <= steady["high"]
    # much better on one group, a little worse on the ten others: a pooled gain that other sources would not show
    one_group = np.where(groups == "game_0", np.where(labels == 1, 0.99, 0.01), np.where(labels == 1, 0.57, 0.43))
    lucky = source_group_gain(one_group, reference, labels, groups, sources)
    assert lucky["gain"] > 0 and lucky["low"] < 0 < lucky["high"]
    assert source_group_gain(reference, reference, labels, groups, sources) == {"gain": 0.0, "low": 0.0, "high": 0.0}
