"""The benchmarks: what the engine's speed claims rest on, each a command (``python -m
study.bench.NAME``) that prints ratios measured side by side in one run, CPU time beside wall time.

``loop`` times the population engine against the canonical Optuna + PyTorch loop; ``population``
the cost per member-epoch as a population grows; ``bookkeeping`` where a sweep's time goes besides
training; ``torch_compile`` what ``torch.compile`` would buy; ``workers`` several processes on one
storage; ``fairness`` how long a stock Optuna writer waits beside this project's. ``counting``
is their shared measure: FLOPs by PyTorch's counter and this machine's matrix-product rate.
"""
