"""``study.replicate``: the claims' tests on constructed data where the outcome is known, the
Welch contrast they rest on, and the command end to end at a tiny budget."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.metrics import ACCURACY, bits_per_character
from study.replications import COSINE_TO_10, LINEAR_TO_0, REPLICATIONS
from study.reporting import replication
from study.reporting.statistics import welch, welch_contrast

BPC = bits_per_character(65)
ARMS = (COSINE_TO_10, LINEAR_TO_0)


def _runs(means: dict[tuple[str, int], float], spread: float, runs: int = 5, seed: int = 0) -> pd.DataFrame:
    """Per (arm, epochs) ``runs`` tuning runs' test metrics around the given means."""
    rng = np.random.default_rng(seed)
    rows = [
        {"workload": "w", "arm": arm, "epochs": epochs, "repeat": r, "test_metric": mean + spread * rng.standard_normal(), "seeds": 3}
        for (arm, epochs), mean in means.items()
        for r in range(runs)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_two_group_contrast_is_welchs_test_as_statsmodels_computes_it() -> None:
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    rng = np.random.default_rng(1)
    a, b = rng.normal(0.9, 0.01, 4), rng.normal(0.88, 0.03, 3)
    estimate, se, df = welch_contrast([a, b], [1, -1])
    compare = CompareMeans(DescrStatsW(a), DescrStatsW(b))
    _, p, reference_df = compare.ttest_ind(usevar="unequal")
    assert estimate == pytest.approx(a.mean() - b.mean())
    assert df == pytest.approx(reference_df)
    assert welch([a, b], [1, -1], 0.01).p_value == pytest.approx(p)
    assert se == pytest.approx(compare.std_meandiff_separatevar)


def test_a_difference_of_differences_interval_covers_the_truth_95_percent_of_the_time() -> None:
    from scipy import stats

    rng = np.random.default_rng(2)
    true_growth, covered, datasets = 0.01, 0, 2000
    for _ in range(datasets):  # four groups of 3 runs, each with its own spread
        groups = [
            rng.normal(mean, sd, 3)
            for mean, sd in ((0.91, 0.004), (0.90, 0.002), (0.85, 0.006), (0.85, 0.003))
        ]
        estimate, se, df = welch_contrast(groups, [1, -1, -1, 1])
        half = stats.t.ppf(0.975, df) * se
        covered += estimate - half <= true_growth <= estimate + half
    assert 0.93 <= covered / datasets <= 0.975  # Welch-Satterthwaite is approximate; it runs a little wide


def test_decay_to_zero_is_reproduced_when_its_lead_is_never_negative_and_grows() -> None:
    means = {
        ("cosine to 10%", 10): 0.80,
        ("linear to 0", 10): 0.80,
        ("cosine to 10%", 40): 0.85,
        ("linear to 0", 40): 0.87,
    }
    verdict, reason, table = replication.lead_grows(_runs(means, 0.002), ARMS, ACCURACY, 0.005)
    assert verdict == replication.REPRODUCED, reason
    assert table.iloc[-1]["lead"] == pytest.approx(0.02, abs=0.005)  # the growth row


def test_decay_to_zero_is_not_reproduced_when_it_falls_behind_at_a_length() -> None:
    means = {
        ("cosine to 10%", 10): 0.80,
        ("linear to 0", 10): 0.77,
        ("cosine to 10%", 40): 0.85,
        ("linear to 0", 40): 0.87,
    }
    assert replication.lead_grows(_runs(means, 0.002), ARMS, ACCURACY, 0.005)[0] == replication.NOT_REPRODUCED


def test_decay_to_zero_is_inconclusive_when_tuning_runs_scatter_more_than_the_leads() -> None:
    means = {
        ("cosine to 10%", 10): 0.80,
        ("linear to 0", 10): 0.80,
        ("cosine to 10%", 40): 0.85,
        ("linear to 0", 40): 0.86,
    }
    verdict, _, _ = replication.lead_grows(_runs(means, 0.05, runs=3), ARMS, ACCURACY, 0.005)
    assert verdict == replication.INCONCLUSIVE


def _cooldown_runs(claimed_gap: float, spread: float) -> tuple[pd.DataFrame, tuple]:
    arms = REPLICATIONS["cooldown"].arms
    means = {(arm.label, 10): 3.0 + (claimed_gap if "1-sqrt 10%" in arm.label else 0.0) for arm in arms}
    return _runs(means, spread), arms


def test_a_cooldown_that_matches_cosine_within_the_margin_reproduces_the_claim() -> None:
    runs, arms = _cooldown_runs(0.0, 0.001)
    verdict, reason, table = replication.matches_reference(
        runs, arms, REPLICATIONS["cooldown"].claimed, BPC, 0.01
    )
    assert verdict == replication.REPRODUCED, reason
    assert table["p_not_behind_holm"].notna().sum() == 2  # only the claimed arms are held to it


def test_a_claimed_cooldown_worse_than_cosine_is_not_reproduced_and_lower_bits_are_ahead() -> None:
    runs, arms = _cooldown_runs(0.05, 0.001)  # 0.05 more bits per character: worse
    verdict, _, table = replication.matches_reference(runs, arms, REPLICATIONS["cooldown"].claimed, BPC, 0.01)
    assert verdict == replication.NOT_REPRODUCED
    assert table.set_index("comparison").loc["wsd 1-sqrt 10% vs cosine", "lead"] == pytest.approx(
        -0.05, abs=0.003
    )


def _band_trials(top_with_warmup: float, top_without: float) -> pd.DataFrame:
    """Per arm and run, trials at LRs 1e-3..1: those up to the arm's top end at the best value,
    the rest far worse."""
    rows = []
    for arm, top in (("warmup tuned", top_with_warmup), ("no warmup", top_without)):
        for repeat in range(3):
            for k, lr in enumerate(np.logspace(-3, 0, 13)):
                good = lr <= top * (1 + 0.05 * repeat)
                rows.append({"arm": arm, "repeat": repeat, "state": "COMPLETE", "param_lr": lr, "number": k,
                             "final_metric": 3.0 if good else 4.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_warmup_claim_follows_where_the_band_of_good_lrs_ends() -> None:
    arms = REPLICATIONS["warmup"].arms
    higher = replication.band_frame(_band_trials(0.3, 0.03), BPC, 0.01)
    verdict, reason, table = replication.wider_toward_high_lrs(higher, arms)
    assert verdict == replication.REPRODUCED, reason
    assert table.iloc[0]["lead"] == pytest.approx(1.0, abs=0.1)  # a decade higher
    lower = replication.band_frame(_band_trials(0.03, 0.3), BPC, 0.01)
    assert replication.wider_toward_high_lrs(lower, arms)[0] == replication.NOT_REPRODUCED


@pytest.mark.slow
def test_the_command_tunes_each_arm_at_each_length_and_writes_its_outcome(tmp_path: Path, run_cli) -> None:
    argv = [
        "decay-to-zero",
        "--workload",
        "mnist1d",
        "--trials",
        "2",
        "--repeats",
        "2",
        "--seeds",
        "2",
        "--epochs",
        "1",
    ]
    code, out, _ = run_cli("replicate", *argv, "--out", str(tmp_path))
    assert code == 0
    assert re.search(r"## mnist1d: (reproduced|not reproduced|inconclusive)", out)
    assert "1 epochs" in out and "4 epochs" in out
    assert {p.name for p in tmp_path.iterdir()} >= {
        "decay-to-zero.md",
        "decay-to-zero.csv",
        "decay-to-zero.png",
    }
    assert sorted(p.name for p in tmp_path.glob("optuna-*x.journal")) == [
        "optuna-1x.journal",
        "optuna-2x.journal",
        "optuna-4x.journal",
    ]
    table = pd.read_csv(tmp_path / "decay-to-zero.csv", comment="#")
    assert len(table) == 4 and set(table["workload"]) == {"mnist1d"}
    written = (tmp_path / "decay-to-zero.md").read_text()
    code, again, err = run_cli("replicate", *argv, "--out", str(tmp_path))  # resumed: nothing re-trained
    assert code == 0 and "nothing to do" in again and "re-evaluating" not in err
    assert (tmp_path / "decay-to-zero.md").read_text().split("Made by")[0] == written.split("Made by")[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-claim"], "unknown replication 'no-such-claim'"),
        (["cooldown", "--workload", "digits"], "cooldown runs on shakespeare, not digits"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], message: str, run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("replicate", *argv, "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
