"""``--precision bf16``: products in bfloat16 where the hardware has them, a one-line refusal
where it does not, and its own studies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from objectives.engine import training
from objectives.engine.training import MemberConfig, has_native_bf16, train
from objectives.experiment import Experiment
from objectives.stored import stored_experiment, study_attrs
from objectives.workloads.registry import get_workload, load_splits

NATIVE = has_native_bf16(torch.device("cpu"))


def _val_losses(precision: str) -> np.ndarray:
    workload = get_workload("digits")
    member = MemberConfig(optimizer="sgd", lr=0.05, family="cosine", schedule_kwargs={}, seed=1)
    [result] = train(
        workload, load_splits(workload, 0), [member], epochs=2, batch_size=32, precision=precision
    )
    return np.array(result.curve.val_loss)


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bfloat16 (avx512_bf16 or amx_bf16)")
def test_bf16_computes_in_bfloat16_and_trains_as_fp32_does_within_its_rounding() -> None:
    fp32, bf16 = _val_losses("fp32"), _val_losses("bf16")
    assert not np.array_equal(fp32, bf16)  # the products really ran in bfloat16
    assert bf16 == pytest.approx(fp32, rel=0.05)  # 8 bits of mantissa, not another model


def test_bf16_without_native_hardware_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, run_cli, tmp_path
) -> None:
    monkeypatch.setattr(training, "has_native_bf16", lambda device: False)
    code, _, err = run_cli("run", "--precision", "bf16", "--trials", "2", "--out", str(tmp_path / "out"))
    assert (
        code == 2 and "--precision bf16 needs native bfloat16" in err and len(err.strip().splitlines()) == 1
    )
    assert not (tmp_path / "out").exists()


def test_a_bf16_sweep_names_its_own_studies_and_fp32_stores_nothing_new() -> None:
    fp32 = Experiment("digits", "sgd", "cosine", 20, 32, None, 0)
    bf16 = Experiment(**{**fp32.__dict__, "precision": "bf16"})
    assert bf16.study_name == "digits-sgd_bf16-cosine" and fp32.study_name == "digits-sgd-cosine"
    assert "precision" not in study_attrs(fp32, get_workload("digits"))
    attrs = study_attrs(bf16, get_workload("digits"))
    assert attrs["precision"] == "bf16" and stored_experiment(attrs) == bf16


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bfloat16 (avx512_bf16 or amx_bf16)")
def test_a_bf16_sweep_is_proposed_the_configurations_its_fp32_twin_is(run_cli, tmp_path) -> None:
    from study import load_studies

    argv = ["--families", "cosine", "--trials", "3", "--epochs", "1", "--no-report", "--repeats", "1"]
    for precision in ("fp32", "bf16"):
        assert run_cli("run", *argv, "--precision", precision, "--out", str(tmp_path))[0] == 0
    studies = load_studies(str(tmp_path / "optuna.journal"))
    fp32, bf16 = (studies[name].get_trials() for name in ("digits-sgd-cosine", "digits-sgd_bf16-cosine"))
    assert [t.params for t in fp32] == [t.params for t in bf16]
    assert [t.value for t in fp32] != [t.value for t in bf16]
