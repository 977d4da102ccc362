"""The sweep stage: topping studies up, populations, pruning, workers and their storage."""
