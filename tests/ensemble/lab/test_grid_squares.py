"""The grid-squares probe: fold heads fitted on one cached view are scored on another view of the held-out rows."""

import numpy as np

from ensemble.heads import Recipe, fit_rows, out_of_fold
from ensemble.lab.grid_squares import scored_on
from tests.ensemble.test_heads import synthetic_training_set


def test_scored_on_the_view_it_was_fitted_on_it_is_the_out_of_fold_logit():
    data = synthetic_training_set()
    recipe = Recipe("f")
    np.testing.assert_allclose(scored_on(data, recipe, "f"), out_of_fold(data, recipe))


def test_the_held_out_rows_are_read_from_the_other_view_and_the_fit_from_its_own():
    data = synthetic_training_set()
    data.features["blank"] = np.zeros_like(data.features["f"])
    recipe = Recipe("f")
    logits = scored_on(data, recipe, "blank")
    for fold in np.unique(data.fold):
        held = data.fold == fold
        # a head fitted on the informative view, reading zeros: its bias alone, the same on every held-out row
        bias = fit_rows(data, data.fold != fold, recipe).bias
        np.testing.assert_allclose(logits[held], bias)
