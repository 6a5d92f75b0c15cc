"""The lab: probes and comparisons that chose the shipped recipes; nothing here serves a verdict or trains weights.

- ``selection``: head recipes and ensembles compared out of fold on sources never seen, over fold seeds, with the
  guard a candidate must pass to replace the shipped members (``python -m ensemble.lab.selection``);
- ``upper_stages``: the whole-picture member's last stages fine-tuned on cached block outputs;
- ``complementary``: the whole-picture member fitted against what the other two members miss.

Each reads the feature cache in ``data/features`` (``python -m ensemble train`` caches the shipped members' views;
``python -m ensemble.features --views ...`` the others), never the test split. What they found is in
docs/experiments.md.
"""
