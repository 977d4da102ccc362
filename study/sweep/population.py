"""A population at the Optuna boundary: the trials of one batch, asked, trained together, told.

``Population`` owns what one batch needs: the study and its experiment, the trials it asked and
the members they train, their heartbeats, the pruner's view of which trials are companions, and
telling the study how each ended. The sweep (``study/sweep/top_up.py``) only decides when to make one.

Seeds: a trial's place is its number less the interrupted trials before it (``objectives.seeds``
says which seed drives what); the sampler is seeded from the place before every ask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from objectives.engine.training import MemberConfig
from objectives.experiment import Experiment
from objectives.objective import Judge, Outcome, each_on_its_own, member_from_trial, run_trials
from objectives.pruners import PopulationMedianPruner
from objectives.seeds import sampler_seed, trial_seed
from objectives.stored import ERROR, INTERRUPTED, WORKER, counts_as_finished
from objectives.workloads.registry import Splits, Workload
from study.errors import RunStopped
from study.storage.backends import held_tells, held_writes, session_lost
from study.sweep.grid import grid_sampler
from study.sweep.workers import heartbeat, record_heartbeat, this_worker


def sampler(experiment: Experiment, place: int) -> optuna.samplers.BaseSampler:
    """The sampler of the trial at ``place``: the grid's (``study.sweep.grid``) or TPE's."""
    return grid_sampler(experiment) if experiment.is_grid else tpe_sampler(experiment, place)


def tpe_sampler(experiment: Experiment, place: int) -> optuna.samplers.TPESampler:
    """TPE seeded for one trial's draws. Its options are Optuna 5's defaults, set here because the
    sweep depends on them: constant liar spreads a population's asks, multivariate TPE samples
    the knobs jointly (Optuna 4 defaulted to neither). Seeded by the fp32 study's name: the
    precision changes how a trial computes, not which configurations are proposed, so a bf16
    sweep starts from the same ones as its fp32 twin."""
    as_fp32 = dataclasses.replace(experiment, precision="fp32")
    return optuna.samplers.TPESampler(
        seed=sampler_seed(experiment.seed, as_fp32.study_name, place),
        constant_liar=True,
        multivariate=True,
    )


def room(study: optuna.Study, trials: int) -> int:
    """How many more trials the study may start: ``trials`` less the finished and running ones."""
    current = study.get_trials(deepcopy=False)
    return (
        trials - sum(map(counts_as_finished, current)) - sum(t.state == TrialState.RUNNING for t in current)
    )


def _interrupted(trials: Sequence[FrozenTrial]) -> int:
    return sum(bool(trial.user_attrs.get(INTERRUPTED)) for trial in trials)


@dataclass
class Population:
    """The trials of one batch and the members they train, from ask to tell."""

    storage: optuna.storages.BaseStorage
    study: optuna.Study
    experiment: Experiment
    trials: list[optuna.Trial] = field(default_factory=list)
    members: list[MemberConfig] = field(default_factory=list)
    told: int = 0  # trials[:told] are told (finished in the storage once ``tell`` returns)

    def fill(self, size: int, trials_wanted: int) -> None:
        """Ask up to ``size`` trials while the study has room for them.

        The room left is checked before every ask, not once per batch: workers asking at the
        same time interleave their asks, and together they overshoot ``trials_wanted`` by at
        most one trial each, not by a batch each."""
        while len(self.trials) < size and room(self.study, trials_wanted) > 0:
            trial = self._ask()
            self.trials.append(trial)  # in the list at once: an interrupt marks it too
            try:
                self.members.append(self._configure(trial))
            except ValueError as error:  # this trial's own configuration: it alone fails
                self._fail(self.trials.pop(), f"{type(error).__name__}: {error}")

    def train(self, workload: Workload, data: Splits, device: str) -> list[Outcome]:
        """Train the members together, with heartbeats, each pruned against its companions.

        An epoch's reports, and at the end the trials' attributes, go to a journal in one append
        each (``held_writes``), written when the pruner reads the study."""
        with (
            heartbeat(self.storage, self.study, self.trials),
            held_writes(self.storage),
            self._judging() as judge,
        ):
            return run_trials(
                self.trials, self.members, workload, self.experiment, data, device=device, judge=judge
            )

    def tell(self, outcomes: Sequence[Outcome]) -> None:
        """Tell each trial how it ended; a journal gets the population's tells in one append."""
        with held_tells(self.storage):
            for trial, outcome in zip(self.trials, outcomes, strict=True):
                self.study.tell(trial, outcome.value, state=outcome.state)
                self.told += 1

    def interrupt(self) -> None:
        """End trials that did not get to finish: failed, marked interrupted, redone on resume.
        A trial may already be finished: told just before an interrupt that came before ``told``
        counted it, or taken over by another worker (``give_up``); it is left as it is, and the
        rest are still ended."""
        for trial in self.trials[self.told :]:
            with contextlib.suppress(UpdateFinishedTrialError):
                trial.set_user_attr(INTERRUPTED, True)
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def give_up(self) -> None:
        """Other workers took this one for dead (stopped past its heartbeat's grace, say) and
        redid its trials: what is left of them is dropped, and the sweep goes on."""
        left = self.trials[self.told :]
        tqdm.write(
            f"warning: {self.experiment.study_name}: trial(s) {', '.join(str(t.number) for t in left)} were "
            "taken over by another worker while this one was stopped; dropping this worker's results",
            file=sys.stderr,
        )
        self.interrupt()

    def stop_run(self, error: Exception) -> RunStopped:
        """Training broke for the whole batch: none of it counts, and the run stops."""
        self.interrupt()
        return RunStopped(
            f"training {self.experiment.study_name} failed for a whole batch ({type(error).__name__}: {error}); "
            "its trials are not counted and are redone by the next run"
        )

    def _ask(self) -> optuna.Trial:
        """Ask the next trial with the sampler seeded for its place, before any draw for it."""
        trials = self.study.get_trials(deepcopy=False)
        self.study.sampler = sampler(self.experiment, len(trials) - _interrupted(trials))
        with warnings.catch_warnings():
            # Heartbeats are recorded by workers.heartbeat; Optuna expects only optimize() to.
            warnings.filterwarnings(
                "ignore", "Heartbeat of storage is supposed to be used with Study.optimize"
            )
            return self.study.ask()

    def _configure(self, trial: optuna.Trial) -> MemberConfig:
        """Claim the trial and draw its configuration at once, so the next ask sees it (constant
        liar): the worker and the drawn parameters reach a journal in one append (``held_writes``)."""
        place = trial.number - _interrupted(self.study.get_trials(deepcopy=False)[: trial.number])
        record_heartbeat(self.storage, self.study, trial)  # before the worker: a claimed trial has one
        with held_writes(self.storage):
            trial.set_user_attr(WORKER, this_worker().record())
            return member_from_trial(trial, self.experiment, trial_seed(self.experiment.seed, place))

    def _fail(self, trial: optuna.Trial, message: str) -> None:
        """A trial that failed for a reason of its own: recorded with its error, and counted."""
        name = self.experiment.study_name
        tqdm.write(f"warning: {name} trial {trial.number} failed: {message}", file=sys.stderr)
        trial.set_user_attr(ERROR, message)
        self.study.tell(trial, state=TrialState.FAIL)

    @contextlib.contextmanager
    def _judging(self) -> Iterator[Judge]:
        """Name this population's trials to the pruner, which counts them as companions, and
        judge each epoch's members in one pass; other pruners judge trial by trial."""
        pruner = self.study.pruner
        together = isinstance(pruner, PopulationMedianPruner)

        def judge(reported: Sequence[optuna.Trial]) -> set[int]:
            if together:
                return pruner.prune_population(self.study, {t.number for t in reported})
            return each_on_its_own(reported)

        if not together:
            yield judge
            return
        with pruner.judging(trial.number for trial in self.trials):
            yield judge


def taken_over(error: Exception) -> bool:
    """Whether a storage error says peers took this worker's trials while it was stopped: a trial
    already finished, or the session the server ended inside a frozen transaction."""
    if isinstance(error, UpdateFinishedTrialError):
        return True
    return isinstance(error, optuna.exceptions.StorageInternalError) and session_lost(error)


def run_population(
    storage: optuna.storages.BaseStorage, study: optuna.Study, experiment: Experiment,
    workload: Workload, data: Splits, *, size: int, trials_wanted: int, device: str,
) -> None:  # fmt: skip
    """Ask up to ``size`` trials, train them as one population, tell each how it ended."""
    population = Population(storage, study, experiment)
    try:
        population.fill(size, trials_wanted)
        if not population.trials:
            return  # peers took the room left
        outcomes = population.train(workload, data, device)
    except KeyboardInterrupt:
        population.interrupt()
        raise
    except Exception as error:  # training broke for the whole batch: stop, and redo it later
        if taken_over(error):
            population.give_up()
            return
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise  # the storage's disk is full: not the batch's fault (the command says so)
        raise population.stop_run(error) from error
    try:
        population.tell(outcomes)
    except KeyboardInterrupt:
        population.interrupt()
        raise
    except Exception as error:
        if not taken_over(error):
            raise
        population.give_up()
