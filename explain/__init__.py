"""Explanations of a verdict: evidence beyond the classifier's score."""
