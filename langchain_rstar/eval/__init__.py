"""Evaluation: datasets, baselines, the JSONL harness behind `rstar eval`, reports."""
