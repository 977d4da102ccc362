"""Workloads: what to train (data, model, budget, target), their data files and models."""
