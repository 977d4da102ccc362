"""``study.replicate``: each claim's rule on constructed data where the truth is known (a claim
that holds is reproduced, one that fails is contradicted, and at the boundary the false verdict
stays within 5%), and the command end to end on built-in data."""

from __future__ import annotations

import lzma
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.replications import REPLICATIONS
from study.reporting import replication, theory
from study.reporting.replication import CONTRADICTED, INCONCLUSIVE, REPRODUCED

MARGIN = 0.032
CLAIMED = ("a", "b")


def _rate(outcomes: list[str], word: str) -> float:
    return outcomes.count(word) / len(outcomes)


def _cooldowns(lead: float, sd: float, seeds: int, datasets: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        replication.matches_reference({arm: rng.normal(lead, sd, seeds) for arm in (*CLAIMED, "c")}, CLAIMED, MARGIN).verdict
        for _ in range(datasets)
    ]  # fmt: skip


def test_a_cooldown_that_matches_is_reproduced_and_one_two_margins_behind_is_contradicted() -> None:
    assert _rate(_cooldowns(0.0, 0.03, 12, 200), REPRODUCED) >= 0.8
    assert _rate(_cooldowns(-2 * MARGIN, 0.03, 12, 200), CONTRADICTED) >= 0.8


def test_a_cooldown_exactly_at_the_margin_is_rarely_called_either_way() -> None:
    """At a lead of -margin both one-sided nulls hold: each false verdict at most 5% (Holm), here
    within two standard errors of 5% over 400 datasets (7.2%)."""
    outcomes = _cooldowns(-MARGIN, 0.03, 12, 400, seed=1)
    assert _rate(outcomes, REPRODUCED) <= 0.072 and _rate(outcomes, CONTRADICTED) <= 0.072


def test_noise_alone_leaves_a_cooldown_inconclusive_and_says_how_many_seeds_would_settle_it() -> None:
    outcome = replication.matches_reference(
        {arm: np.array([0.3, -0.2, 0.1]) for arm in CLAIMED}, CLAIMED, MARGIN
    )
    assert outcome.verdict == INCONCLUSIVE and re.search(r"a: \d+ seeds", outcome.settle()), outcome.settle()


def _lengths(leads: dict[int, float], sd: float, datasets: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        replication.lead_grows({e: rng.normal(mean, sd, 12) for e, mean in leads.items()}, MARGIN).verdict
        for _ in range(datasets)
    ]


def test_decay_to_zero_reproduced_when_its_lead_grows_contradicted_when_it_shrinks() -> None:
    assert _rate(_lengths({8: 0.0, 16: 0.02, 32: 0.05}, 0.02, 200), REPRODUCED) >= 0.8
    assert _rate(_lengths({8: 0.05, 16: 0.02, 32: 0.0}, 0.02, 200), CONTRADICTED) >= 0.8


def test_decay_to_zero_with_no_growth_is_reproduced_at_most_5_percent_of_the_time() -> None:
    outcomes = _lengths({8: 0.0, 16: 0.0, 32: 0.0}, 0.02, 400, seed=2)
    assert _rate(outcomes, REPRODUCED) <= 0.05


def _sensitivity(tops: dict[str, int], seeds: int, noise: float, seed: int) -> pd.DataFrame:
    """Per arm a curve flat at 3.0 bits up to its top lattice index (of LR 10^(k/4)), then
    rising by 0.2 bits a step, per seed plus noise; above top + 3 it diverges."""
    rng, rows = np.random.default_rng(seed), []
    for arm, top in tops.items():
        for k in range(-16, -1):
            for s in range(seeds):
                rise = max(0, k - top) * 0.2
                diverged = k > top + 3
                value = 6.0 if diverged else 3.0 + rise + rng.normal(0, noise)
                rows.append(
                    {"arm": arm, "lr": 10 ** (k / 4), "seed": s, "value": value, "diverged": diverged}
                )
    return pd.DataFrame(rows)


ARMS = ("warm", "cold")


def test_a_warmup_that_lifts_the_band_two_steps_is_reproduced_and_one_that_lowers_it_contradicted() -> None:
    higher = _sensitivity({"warm": -6, "cold": -8}, 4, 0.005, 0)
    outcome = replication.band_reaches_higher(higher, ARMS, -1.0, MARGIN, draws=200)
    assert outcome.verdict == REPRODUCED and outcome.table["lead"].iloc[0] == pytest.approx(0.5), (
        outcome.reason
    )
    lower = _sensitivity({"warm": -9, "cold": -7}, 4, 0.005, 0)
    assert replication.band_reaches_higher(lower, ARMS, -1.0, MARGIN, draws=200).verdict == CONTRADICTED


def test_a_warmup_that_changes_nothing_is_rarely_reproduced() -> None:
    """Measured: 1 of 40 reproduced, 6 contradicted (rightly), 33 inconclusive (METHODS)."""
    outcomes = [
        replication.band_reaches_higher(_sensitivity({"warm": -7, "cold": -7}, 4, 0.02, seed), ARMS, -1.0, MARGIN, draws=200).verdict
        for seed in range(40)
    ]  # fmt: skip
    assert _rate(outcomes, REPRODUCED) <= 0.05


def _contrasts(advantage: float, sd: float, seed: int) -> pd.DataFrame:
    rng, rows = np.random.default_rng(seed), []
    for workload in ("w1", "w2", "w3", "w4"):
        for rho, direction, s in [
            (r, d, s) for r in (1.78, 3.16) for d in ("x rho", "/ rho") for s in range(4)
        ]:
            a = advantage + rng.normal(0, sd)
            rows.append({"workload": workload, "rho": rho, "direction": direction, "seed": s, "advantage": a,
                         "constant_lost": 0.1 + a, "decaying_lost": 0.1})  # fmt: skip
    return pd.DataFrame(rows)


def test_robustness_follows_the_sign_of_the_advantage_across_workloads() -> None:
    assert replication.robustness(_contrasts(0.05, 0.01, 0)).verdict == REPRODUCED
    assert replication.robustness(_contrasts(-0.05, 0.01, 0)).verdict == CONTRADICTED
    null = [replication.robustness(_contrasts(0.0, 0.02, seed)).verdict for seed in range(100)]
    assert _rate(null, REPRODUCED) <= 0.05 and _rate(null, CONTRADICTED) <= 0.05


@pytest.mark.parametrize(
    ("supports", "against", "word"),
    [
        (3, 0, REPRODUCED),
        (4, 0, REPRODUCED),
        (2, 0, INCONCLUSIVE),
        (3, 1, INCONCLUSIVE),
        (0, 3, CONTRADICTED),
    ],
)
def test_the_rule_across_four_workloads(supports: int, against: int, word: str) -> None:
    assert replication.across_workloads(supports, against, 4) == word


def _bound_frame(direction: float, seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Ten schedules whose measured accuracy follows their bound (``direction`` -1: better
    where the bound is smaller, as the claim says; +1: the reverse), 12 seeds each."""
    rng, rows = np.random.default_rng(seed), []
    for workload in ("w1", "w2", "w3", "w4"):
        for i, family in enumerate(["constant", *(f"f{i}" for i in range(9))]):
            bound = 0.1 + 0.01 * i
            for s in range(12):
                rows.append({"workload": workload, "family": family, "bound": bound, "bound_lr": 0.1,
                             "lr": 0.1, "seed": s, "test_metric": 0.8 + direction * bound + rng.normal(0, 0.003)})  # fmt: skip
    return pd.DataFrame(rows), dict.fromkeys(("w1", "w2", "w3", "w4"), 1.0)


def test_a_bound_that_orders_schedules_as_measured_is_reproduced_and_the_reverse_contradicted() -> None:
    assert replication.bound_ordering(*_bound_frame(-1.0, 0), draws=200).verdict == REPRODUCED
    assert replication.bound_ordering(*_bound_frame(+1.0, 0), draws=200).verdict == CONTRADICTED


def _law_curves(truth: tuple[float, ...], noise: float, seed: int) -> pd.DataFrame:
    """Ten epochs of 50 steps per schedule, the loss drawn from the law plus noise."""
    rng, rows, steps = np.random.default_rng(seed), [], np.arange(500)
    shapes = {
        "constant": np.ones(500), "cosine": 0.5 * (1 + np.cos(np.pi * steps / 500)),
        "linear": 1 - steps / 500, "step": np.where(steps < 250, 1.0, 0.1), "wsd": np.where(steps < 400, 1.0, (500 - steps) / 100),
        "exponential": 0.99 ** (steps / 5), "half": np.full(500, 0.5), "late": np.where(steps < 450, 1.0, 0.3),
    }  # fmt: skip
    for family, shape in shapes.items():
        areas = theory.loss_areas(1e-2 * shape)
        for epoch in range(1, 11):
            end = epoch * 50 - 1
            value = theory.loss_law((areas[0][end], areas[1][end]), *truth) + rng.normal(0, noise)
            rows.append({"workload": "w", "family": family, "epoch": epoch, "val_metric": value,
                         "s1": areas[0][end], "s2": areas[1][end]})  # fmt: skip
    return pd.DataFrame(rows)


def test_curves_that_follow_the_law_are_predicted_and_noise_alone_is_not() -> None:
    truth = (2.0, 1.0, 0.5, 0.3)
    assert replication.curve_prediction(_law_curves(truth, 0.002, 0), draws=200).verdict == REPRODUCED
    noise = _law_curves(truth, 0.0, 0)
    noise["val_metric"] = 3.0 + np.random.default_rng(1).normal(0, 0.1, len(noise))
    assert replication.curve_prediction(noise, draws=200).verdict != REPRODUCED


def test_every_claim_names_a_rule_and_the_training_ones_their_arms() -> None:
    from study.reporting.replication_report import RULE

    assert len(REPLICATIONS) == 6
    for claim in REPLICATIONS.values():
        assert claim.test in RULE and (claim.trains == bool(claim.arms)), claim.name
        assert not claim.claimed or set(claim.claimed) <= {arm.label for arm in claim.arms}


@pytest.mark.slow
def test_a_training_claim_sweeps_each_arm_on_the_grid_and_writes_its_page(tmp_path: Path, run_cli) -> None:
    argv = ["cooldown", "--workload", "moons", "--epochs", "2", "--selection-seeds", "1", "--seeds", "3"]
    code, out, err = run_cli("replicate", *argv, "--out", str(tmp_path))
    assert code == 0, err
    assert re.match(r"# cooldown: (reproduced|contradicted|inconclusive)", out)
    assert {p.name for p in tmp_path.iterdir()} >= {
        "cooldown.md",
        "cooldown.csv",
        "cooldown-runs.csv",
        "cooldown.png",
    }
    runs = pd.read_csv(tmp_path / "cooldown-runs.csv", comment="#")
    evaluation = runs[runs["stage"] == "evaluation"]
    assert set(runs["arm"]) == {arm.label for arm in REPLICATIONS["cooldown"].arms}
    assert evaluation.groupby("arm")["seed"].apply(tuple).nunique() == 1, "every arm on the same seeds"
    assert len(evaluation) == 5 * 3 and (runs["stage"] == "selection").sum() >= 5 * 13
    written = (tmp_path / "cooldown.md").read_text()
    code, again, err = run_cli("replicate", *argv, "--out", str(tmp_path))  # resumed: nothing re-trained
    assert code == 0 and "nothing to do" in again and "re-evaluating" not in err
    assert (tmp_path / "cooldown.md").read_text().split("Made by")[0] == written.split("Made by")[0]


@pytest.mark.slow
def test_the_reading_claims_read_a_grid_storage_and_train_nothing(tmp_path: Path, run_cli) -> None:
    families = "constant,cosine,polynomial,step,wsd"
    code, _, err = run_cli("run", "--workload", "moons", "--protocol", "grid", "--epochs", "2", "--families",
                           families, "--selection-seeds", "2", "--seeds", "3", "--out", str(tmp_path / "suite"))  # fmt: skip
    assert code == 0, err
    journal = str(tmp_path / "suite" / "optuna.journal")
    for name in ("annealing-robustness", "convex-bound"):
        out = tmp_path / name
        code, text, err = run_cli(
            "replicate", name, "--workload", "moons", "--storage", journal, "--out", str(out)
        )
        assert code == 0, err
        assert (
            re.match(rf"# {name}: (reproduced|contradicted|inconclusive)", text)
            and "re-evaluating" not in err
        )
        assert (out / f"{name}-runs.csv").stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-claim"], "unknown replication 'no-such-claim'"),
        (["cooldown", "--workload", "digits,moons"], "cooldown trains on one workload; --workload names 2"),
        (["curve-prediction", "--workload", "digits"], "curve-prediction fits a loss curve; digits is judged by accuracy"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(argv: list[str], message: str, run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("replicate", *argv, "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_reading_claim_on_a_missing_storage_says_so(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("replicate", "convex-bound", "--workload", "moons", "--storage",
                           str(tmp_path / "missing.journal"), "--out", str(tmp_path))  # fmt: skip
    assert code == 2 and "no journal at" in err and len(err.strip().splitlines()) == 1


def test_decay_to_zero_runs_at_the_tokens_per_parameter_its_setting_says() -> None:
    """The setting's "about 21, 43 and 86 tokens per parameter", counted on the model."""
    from study.reporting.replication_report import _tokens_per_parameter

    claim = REPLICATIONS["decay-to-zero"]
    counted = _tokens_per_parameter(claim, [])["tokens_per_parameter"].round().astype(int).tolist()
    assert f"about {counted[0]}, {counted[1]} and {counted[2]} tokens per parameter" in claim.setting


SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PUBLISHED_CLAIMS = Path(__file__).resolve().parents[2] / "results" / "replications"


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, claim in REPLICATIONS.items() if claim.trains])
def test_a_published_claim_rebuilds_from_its_archived_journals_without_training(
    name: str, tmp_path: Path, run_cli
) -> None:
    """The committed ``optuna*.journal.xz`` beside each trained claim's page, decompressed, give
    the same command nothing to train and the published tables again (all but the provenance line)."""
    if not (SHARED_DATA / "tinyshakespeare").is_dir():
        pytest.skip(f"{SHARED_DATA / 'tinyshakespeare'} is absent (CI has it)")
    archives = sorted((PUBLISHED_CLAIMS / name).glob("optuna*.journal.xz"))
    assert archives, f"{name}: no archived journal committed beside its page"
    for archive in archives:
        (tmp_path / archive.name.removesuffix(".xz")).write_bytes(lzma.decompress(archive.read_bytes()))
    code, _, err = run_cli("replicate", name, "--data-dir", str(SHARED_DATA), "--out", str(tmp_path))
    assert code == 0, err
    assert "re-evaluating" not in err
    for table in (f"{name}.csv", f"{name}-runs.csv"):
        published = (PUBLISHED_CLAIMS / name / table).read_text().split("\n", 1)[1]
        assert (tmp_path / table).read_text().split("\n", 1)[1] == published, table
