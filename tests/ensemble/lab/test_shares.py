"""The familiar sources' share sweep: each step changes those three shares and nothing else."""

from ensemble.build import MEMBERS
from ensemble.heads import SHARES
from ensemble.lab.shares import FAMILIAR, STEPS, members_of


def test_the_shipped_step_is_the_shipped_members():
    assert members_of("shipped") == MEMBERS


def test_a_step_changes_only_the_familiar_shares():
    before = members_of("before")
    for name, recipe in before.items():
        assert [recipe.shares[s] for s in FAMILIAR] == list(STEPS["before"])
        others = {s: v for s, v in recipe.shares.items() if s not in FAMILIAR}
        assert others == {s: v for s, v in SHARES.items() if s not in FAMILIAR}
        assert recipe.backbone_view == MEMBERS[name].backbone_view and recipe.l2 == MEMBERS[name].l2


def test_a_one_source_step_moves_that_share_alone():
    for name, recipe in members_of("human-art=0.18").items():
        assert recipe.shares == SHARES | {"human-art": 0.18}
        assert recipe.backbone_view == MEMBERS[name].backbone_view
