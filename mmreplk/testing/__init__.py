"""Synthetic images and data sets for the tests, the demo and the tools (numpy, OpenCV)."""
