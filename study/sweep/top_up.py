"""The sweep: one Optuna study per (workload, optimizer, family), each run to N finished trials.

Resuming is the default, not a mode: every run opens the studies that exist, fails the trials
that a dead process left RUNNING, and tops each study up to ``--trials`` finished trials.

Reproducibility: the sampler is re-seeded before every ask from (seed, study, place) and each
trial's training seed derives from (seed, place), where a trial's place is its number less the
interrupted trials before it. So the same command with the same seed asks the same trials and
gets the same numbers; at population 1 also when stopped and resumed, since a trial redone after
an interrupt takes the interrupted one's place. (Workers asking at the same moment may share a
place, and so a seed; nothing depends on it being unique.)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from objectives.experiment import Experiment
from objectives.pruners import make_pruner
from objectives.schedules import get_family
from objectives.stored import Worker, finished_count, stored_metric, study_attrs
from objectives.workloads.registry import Splits, Workload
from study.storage.backends import allow_experimental, held_writes
from study.sweep.grid import grid_target
from study.sweep.population import room, run_population
from study.sweep.stored_settings import check_stored_settings
from study.sweep.workers import fail_abandoned_trials


def _optimizer_settings(experiment: Experiment) -> str:
    momentum = "" if experiment.momentum is None else f", momentum {experiment.momentum:g}"
    nesterov = " (Nesterov)" if experiment.nesterov else ""
    decay = "" if experiment.weight_decay is None else f", weight decay {experiment.weight_decay:g}"
    return f"{experiment.optimizer}{momentum}{nesterov}{decay}"


def _study_note(experiment: Experiment, workload: Workload) -> str:
    """Markdown shown on the study's dashboard page."""
    metric = workload.metric
    stopping = (
        f", early stopping after {experiment.early_stopping} flat epochs" if experiment.early_stopping else ""
    )
    return (
        f"## {experiment.family} on {experiment.workload} with {experiment.optimizer_label}\n\n"
        f"{get_family(experiment.family).description}.\n\n"
        f"- Workload: {workload.description}; {experiment.epochs} epochs, batch size {experiment.batch_size}{stopping}.\n"
        f"- Objective: final validation {metric.label} (`{metric.validation_name}`, {metric.direction}d); "
        f"converged means {metric.validation_name} {metric.comparison} {workload.target}.\n"
        f"- The learning-curve plot's Step axis is the epoch; each point is that epoch's validation {metric.label}.\n"
        "- In a schedule, a step is one optimizer update; lengths are fractions of the run; gamma of a smooth decay is per epoch.\n"
        f"- Optimizer: {_optimizer_settings(experiment)}.\n"
        "- Each trial's `curve_*` attributes hold its per-epoch train/val loss, val accuracy, val metric, LR, momentum and seconds (6 significant digits).\n"
    )


def open_study(
    storage: optuna.storages.BaseStorage, experiment: Experiment, workload: Workload, pruner: str
) -> optuna.Study:
    """Load the experiment's study, or create it; then make sure it is fully described."""
    name, chosen_pruner = experiment.study_name, make_pruner(pruner, experiment.epochs)
    try:
        study = optuna.load_study(study_name=name, storage=storage, pruner=chosen_pruner)
    except KeyError:
        try:
            study = optuna.create_study(
                storage=storage, study_name=name, direction=workload.metric.direction, pruner=chosen_pruner
            )
        except optuna.exceptions.DuplicatedStudyError:  # a peer worker created it a moment ago
            study = optuna.load_study(study_name=name, storage=storage, pruner=chosen_pruner)
    with held_writes(storage):  # the attributes in one append
        _describe(study, experiment, workload)
    return study


def _describe(study: optuna.Study, experiment: Experiment, workload: Workload) -> None:
    """Write whatever part of the study's description is missing: its note, metric name and
    settings, in that order. A creator killed half-way leaves some out; every worker writes the
    same values, and a fully described study is not written to at all. The settings go last, so
    a study that has them all has its note: optuna-dashboard (whose import costs seconds, most
    of it scikit-learn) is imported only to describe a new study."""
    attrs, stored = study_attrs(experiment, workload), study.user_attrs
    if all(key in stored for key in attrs):
        return
    from optuna_dashboard import get_note, save_note

    if not get_note(study):
        save_note(study, _study_note(experiment, workload))
    if study.metric_names is None:
        with allow_experimental():
            study.set_metric_names([workload.metric.validation_name])  # the dashboard's label
    for key, value in attrs.items():
        if key not in stored:
            study.set_user_attr(key, value)


WAIT_FOR_PEERS_S = 0.5
"""How often a worker looks again while other workers hold a study's last trials."""


def _top_up(
    storage: optuna.storages.BaseStorage,
    study: optuna.Study,
    experiment: Experiment,
    workload: Workload,
    data: Splits,
    trials: int,
    population: int,
    device: str,
    wait: bool,
) -> Iterator[int]:
    """Run trials until the study has ``trials`` finished ones (``wait``), or until the rest are
    held by peers (not ``wait``); yield the finished count as it grows.

    A worker starts at most ``trials`` - finished - running trials at a time (up to
    ``population`` of them, trained together); near the end, with ``wait``, it waits for the
    trials its peers hold, and takes them over if those peers die. So a study ends with exactly ``trials``
    finished trials, unless workers ask at the same instant (at most one trial extra per extra
    worker; see ``Population.fill``).
    """
    waiting = False
    while True:
        if abandoned := fail_abandoned_trials(storage, study):
            tqdm.write(
                f"{study.study_name}: {abandoned} trial(s) of a stopped worker marked failed; redoing them"
            )
        finished = finished_count(study)
        yield finished
        if finished >= trials:
            return
        if room(study, trials) <= 0:
            if not wait:
                return
            if not waiting:
                tqdm.write(f"{study.study_name}: {_held_by_peers(study)}", file=sys.stderr)
            waiting = True
            time.sleep(WAIT_FOR_PEERS_S)
            continue
        waiting = False
        run_population(
            storage, study, experiment, workload, data, size=population, trials_wanted=trials, device=device
        )


def _held_by_peers(study: optuna.Study) -> str:
    """What a worker waits for near a study's end: the trials other workers are training."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    workers = sorted({f"{w.host}:{w.pid}" for t in running if (w := Worker.read(t.user_attrs))})
    return (
        f"waiting for {len(running)} trial(s) other workers hold ({', '.join(workers) or 'not yet claimed'}); "
        "a worker that stops has its trials redone here"
    )


PLAIN_PROGRESS_EVERY_S = 10.0
"""Without a terminal, a progress line at least this often during a long study."""


class Progress:
    """The sweep's progress: a bar on a terminal; without one (a log file, CI, ``nohup``) a plain
    line on stderr when a study ends and at least every ``PLAIN_PROGRESS_EVERY_S`` seconds."""

    def __init__(self, total: int, initial: int) -> None:
        self.bar = tqdm(total=total, initial=initial, unit="trial", disable=None)
        self.start = self.said = time.monotonic()

    def show(self, study: optuna.Study, finished: int, trials: int, done: int) -> None:
        values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        metric = stored_metric(study.user_attrs)
        best = f"{metric.best(values):.4f}" if values else "-"
        if not self.bar.disable:
            self.bar.set_description(study.study_name)
            self.bar.set_postfix(best=best)  # this study's best, not the previous one's
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if finished >= trials or now - self.said >= PLAIN_PROGRESS_EVERY_S:
            self.said = now
            line = f"{study.study_name}: {min(finished, trials)}/{trials} trials, best {metric.validation_name} {best}"
            print(f"{line}, {now - self.start:.0f} s elapsed", file=sys.stderr, flush=True)

    def grow(self, total: int) -> None:
        """A grid extended: more trials in all."""
        if total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def target(study: optuna.Study, experiment: Experiment, trials: int, *, enqueue: bool = True) -> int:
    """The finished trials a study is to have: ``trials``, or in the grid protocol one per
    wanted grid point (``study.sweep.grid.grid_target``, which enqueues what is missing)."""
    return grid_target(study, experiment, enqueue=enqueue) if experiment.is_grid else trials


def open_studies(
    storage: optuna.storages.BaseStorage,
    workload: Workload,
    experiments: Sequence[Experiment],
    trials: int,
    pruner: str,
) -> tuple[list[optuna.Study], dict[str, int], dict[str, int]]:
    """Every experiment's study, checked and opened (created if new), with its finished trials
    (at most its ``target``) and that target, by name. Says so, on stdout, when every study is
    already done."""
    for experiment in experiments:  # every check before anything is written
        check_stored_settings(storage, experiment, workload)
    studies = [open_study(storage, experiment, workload, pruner) for experiment in experiments]
    targets = {s.study_name: target(s, e, trials) for s, e in zip(studies, experiments)}
    finished = {study.study_name: finished_count(study) for study in studies}
    if all(count >= targets[name] for name, count in finished.items()):
        print(_nothing_to_do(finished, trials, any(e.is_grid for e in experiments)))
    return studies, {name: min(count, targets[name]) for name, count in finished.items()}, targets


def _nothing_to_do(finished: dict[str, int], trials: int, grid: bool) -> str:
    if grid:
        return "nothing to do: every grid point of every study has finished"
    fewest = min(finished.values())
    has = f"{trials}" if fewest == trials else f"at least {trials} (the fewest {fewest})"
    return f"nothing to do: every study already has {has} finished trials (raise --trials above {fewest} to add more)"


def top_up_study(
    storage: optuna.storages.BaseStorage, study: optuna.Study, experiment: Experiment, workload: Workload,
    data: Splits, trials: int, population: int, device: str, wait: bool,
) -> Iterator[tuple[int, int]]:  # fmt: skip
    """``_top_up`` to the study's target, yielding (finished count, target) as it grows; a grid
    study's target grows when its best LR lands on an edge (``study.sweep.grid``), so it is
    topped up again until every wanted point has finished."""
    while True:
        wanted = target(study, experiment, trials)
        for finished in _top_up(storage, study, experiment, workload, data, wanted, population, device, wait):
            yield finished, wanted
        if (
            not experiment.is_grid
            or finished_count(study) < wanted
            or target(study, experiment, trials) == wanted
        ):
            return  # done, or peers hold the rest (not waiting)


def run_sweep(
    storage: optuna.storages.BaseStorage,
    workload: Workload,
    experiments: Sequence[Experiment],
    data: Splits,
    *,
    trials: int,
    pruner: str,
    population: int = 1,
    device: str = "cpu",
) -> list[optuna.Study]:
    """Top every experiment's study up to ``trials`` finished trials on ``workload``'s ``data``;
    return the studies."""
    studies, done, targets = open_studies(storage, workload, experiments, trials, pruner)
    if all(count >= targets[name] for name, count in done.items()):
        return studies
    progress = Progress(total=sum(targets.values()), initial=sum(done.values()))
    try:
        # First every study with room, then a wait for the trials peers hold: a worker that found
        # a study's last trials taken goes on to the next study instead of waiting on each.
        for wait in (False, True):
            for study, experiment in zip(studies, experiments):
                name = study.study_name
                if done[name] >= targets[name]:
                    continue
                for finished, wanted in top_up_study(
                    storage, study, experiment, workload, data, trials, population, device, wait
                ):
                    done[name], targets[name] = min(finished, wanted), wanted
                    progress.grow(sum(targets.values()))
                    progress.show(study, finished, wanted, sum(done.values()))
    finally:
        progress.close()
    return studies
