"""``python -m study.compare_pruning``: does the pruner decide the answer? Two finished sweeps of
the same command, one with the default median pruner and one with ``--pruner none``, side by
side: each family's verdict in both, and how many of the unpruned sweep's five best
configurations per tuning run the median pruner would have stopped (its stored curves replayed
through the pruner, ``objectives.pruners.replay_median_pruner``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from study.cli import DEFAULT_POPULATION, ArgumentParser, add_population_argument, run_main
from study.errors import UsageError

EQUAL_COMPUTE = 0.05
"""Two sweeps whose member-epochs differ by at most this share count as equal compute."""


def _section(out: Path):
    from study.reporting.analysis import load_studies
    from study.reporting.sections import build_section, group_studies

    journal = out / "optuna.journal"
    if not journal.is_file():
        raise UsageError(f"no sweep in {out}: {journal} does not exist")
    groups = list(group_studies(list(load_studies(str(journal)).values())).values())
    if len(groups) != 1:
        raise UsageError(f"{out} holds {len(groups)} (workload, optimizer) groups; compare one at a time")
    return build_section(groups[0]), groups[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.compare_pruning", description=__doc__)
    parser.add_argument("--pruned", type=Path, required=True, help="OUT of the sweep with the median pruner")
    parser.add_argument(
        "--unpruned", type=Path, required=True, help="OUT of the same sweep with --pruner none"
    )
    add_population_argument(parser, f"the sweeps' --population (default {DEFAULT_POPULATION})")
    args = parser.parse_args(argv)
    from study.reporting.tuning import epochs_trained, pruning_replay_frame

    pruned, pruned_studies = _section(args.pruned)
    unpruned, studies = _section(args.unpruned)
    replay = pruning_replay_frame(studies, args.population).groupby("family")
    verdicts = [
        dict(zip(s.pairwise["family"], s.pairwise["verdict"], strict=True)) for s in (pruned, unpruned)
    ]
    print(f"{unpruned.name}: references {pruned.reference} (median pruner) and {unpruned.reference} (none)")
    print(f"{'family':20} {'with median':>13} {'without':>13} {'top-5 stopped':>14} {'all stopped':>12}")
    for family in unpruned.order:
        runs = replay.get_group(family) if family in replay.groups else None
        top = f"{runs['top_stopped'].sum()} of {5 * len(runs)}" if runs is not None else "-"
        share = f"{runs['stopped_share'].mean():.0%}" if runs is not None else "-"
        with_, without = (verdict.get(family, "reference") for verdict in verdicts)
        print(f"{family:20} {with_:>13} {without:>13} {top:>14} {share:>12}")
    print(_compute_line(epochs_trained(pruned_studies), epochs_trained(studies), pruned_studies))


def _compute_line(pruned: int, unpruned: int, pruned_studies) -> str:
    """Each sweep's compute, and the trials that would give the pruned sweep the unpruned one's."""
    from objectives.stored import finished_count

    said = f"compute: {pruned} member-epochs with the median pruner, {unpruned} without ({unpruned / pruned:.2f}x)"
    if abs(unpruned / pruned - 1) <= EQUAL_COMPUTE:
        return f"{said}: equal compute, within {EQUAL_COMPUTE:.0%}"
    trials = max(finished_count(study) for study in pruned_studies)
    return f"{said}; at equal compute the pruned sweep has --trials {round(trials * unpruned / pruned)} (rerun it so, then compare again)"


if __name__ == "__main__":
    run_main(main)
