"""Optimizers: their specs and ranges, and their update rules on stacked members."""
