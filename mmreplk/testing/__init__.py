"""Synthetic data sets for tests and the demo."""
