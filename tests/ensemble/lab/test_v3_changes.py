"""The Detection v3 probe: each change undone on every member, and the test rows it reports on."""

import numpy as np

from ensemble.build import HIGHPASS, LITE0_WHOLE, MEMBERS
from ensemble.heads import TrainingSet, sample_weights
from ensemble.lab.v3_changes import cached_test_rows, members_of, print_summary


def test_each_variant_is_the_shipped_members_with_one_change():
    assert members_of("v3") == MEMBERS
    assert members_of("with-highpass") == MEMBERS | {"lite0_highpass": HIGHPASS}
    no_match = members_of("no-size-match")
    assert all(not r.match_sizes for r in no_match.values())
    assert [r.backbone_view for r in no_match.values()] == [r.backbone_view for r in MEMBERS.values()]
    grid = members_of("grid-l2=3e-3")
    assert grid["lite0_native"].l2 == 3e-3 and grid["lite2_whole"] == MEMBERS["lite2_whole"]
    assert members_of("whole-l2=3e-3")["lite0_native"] == MEMBERS["lite0_native"]
    no_camera = members_of("no-camera")
    assert all(
        r.shares["camera"] == 0.0 and r.shares["games"] == MEMBERS[n].shares["games"] for n, r in no_camera.items()
    )


def test_the_lite0_whole_picture_member_joins_the_shipped_two_or_takes_the_lite2_one_s_place():
    assert members_of("with-lite0-whole") == MEMBERS | {"lite0_whole": LITE0_WHOLE}
    assert members_of("lite0-whole-for-lite2") == {"lite0_native": MEMBERS["lite0_native"], "lite0_whole": LITE0_WHOLE}
    assert members_of("whole-l2=1e-3")["lite2_whole"].l2 == 1e-3


def test_the_summary_gives_the_unseen_sources_mean_and_art_beside_each_member(capsys):
    def table(**logloss):
        return {name: {"logloss": value} for name, value in logloss.items()}

    ensemble = table(overall=0.4, art=0.5, camera=0.2, games=0.6, cifake=0.1)
    record = {"out_of_fold": {"v3": {0: {"ensemble": ensemble, "a": table(overall=0.45), "band": [0.3, 0.7]}}}}
    print_summary(record)
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row == "| v3 (0) | 0.4000 | 0.4000 | 0.5000 | a 0.4500 |"  # unseen: camera and games, not CIFAKE


def test_without_the_camera_share_camera_photos_weigh_nothing():
    n = 12
    data = TrainingSet(
        picture=np.arange(n),
        view=np.full(n, "telegram"),
        label=np.array([0, 1] * 4 + [0] * 4),
        source=np.array(["games"] * 8 + ["camera"] * 4),
        group=np.array(["g1"] * 8 + ["c1"] * 4),
        long_side=np.full(n, 1280),
        fold=np.zeros(n, int),
        features={},
    )
    everything = np.ones(n, bool)
    shipped = sample_weights(data, everything, MEMBERS["lite0_native"])
    without = sample_weights(data, everything, members_of("no-camera")["lite0_native"])
    assert shipped[8:].min() > 0 and not without[8:].any()


def test_only_the_test_pictures_telegram_rows_are_reported():
    rows = [
        {"split": "train", "label": 0, "dataset": "pool", "source": "camera", "group": "pool:c"},
        {"split": "test", "label": 1, "dataset": "pool", "source": "games", "group": "pool:g"},
        {"split": "test", "label": 0, "dataset": "real-vs-ai", "source": "art", "group": ""},
    ]
    arrays = {
        "telegram/row": np.array([0, 1, 2]),
        "telegram/v": np.array([[0.0], [1.0], [2.0]]),
        "small/row": np.array([0]),
        "small/v": np.array([[9.0]]),
    }
    test = cached_test_rows(rows, arrays, ["v"])
    np.testing.assert_array_equal(test["features"]["v"][:, 0], [1.0, 2.0])
    assert test["label"].tolist() == [1, 0] and test["group"].tolist() == ["pool:g", "art"]
    assert test["dataset"].tolist() == ["pool", "real-vs-ai"]
