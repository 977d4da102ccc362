"""Bad input: one clear line on stderr, exit code 2, no traceback, nothing stored touched.

``{stored}`` stands for an out directory holding a finished tiny sweep; ``{tmp}`` for a fresh
directory with ``a_file`` (a plain file), ``garbage.journal`` (not a journal), ``dir.journal``
(a directory), ``empty/`` and ``damaged/`` (a garbage MNIST-format image file) in it;
``{read_only}`` for a directory this user cannot write in.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from objectives.workloads.datasets import FASHION_MNIST
from study.storage.backends import open_storage
from tests.conftest import REPO, SWEEP, run_subprocess

TRAIN_STEP = ["--family", "step", "--lr", "0.1"]
CASES: dict[str, tuple[str, list[str], str]] = {
    "unknown family": (
        "run",
        ["--families", "cosine,linear"],
        "unknown schedule family 'linear'; choose from: all, constant, step",
    ),
    "empty family list": ("run", ["--families", ","], "unknown schedule family ','"),
    "unknown workload": ("run", ["--workload", "mnst"], "argument --workload: invalid choice: 'mnst'"),
    "unknown optimizer": ("run", ["--optimizer", "lion"], "argument --optimizer: invalid choice: 'lion'"),
    "unknown pruner": ("run", ["--pruner", "asha"], "argument --pruner: invalid choice: 'asha'"),
    "zero trials": ("run", ["--trials", "0"], "argument --trials: must be a positive integer, got 0"),
    "text trials": (
        "run",
        ["--trials", "many"],
        "argument --trials: expected a positive integer, got 'many'",
    ),
    "negative epochs": ("run", ["--epochs", "-3"], "argument --epochs: must be a positive integer, got -3"),
    "unknown flag": ("run", ["--trails", "5"], "unrecognized arguments: --trails 5"),
    "malformed storage URL": ("run", ["--storage", "postgresql://u@host:port/db"], "malformed storage URL"),
    "unknown URL scheme": (
        "run",
        ["--storage", "mongodb://localhost/db"],
        "unknown storage URL scheme 'mongodb'",
    ),
    "database driver missing": (
        "run",
        ["--storage", "mysql://u@localhost/db"],
        "needs the Python package 'MySQLdb'",
    ),
    "database refuses connections": (
        "run",
        ["--storage", "postgresql://me@127.0.0.1:1/db"],
        "cannot open storage 'postgresql://me@127.0.0.1:1/db': connection failed",
    ),
    "storage neither URL nor journal": ("run", ["--storage", "sweep.txt"], "neither a database URL"),
    "unopenable sqlite": ("run", ["--storage", "sqlite:////nonexistent/dir/x.db"], "cannot open storage"),
    "journal is a directory": ("run", ["--storage", "{tmp}/dir.journal"], "is a directory, not a file"),
    "journal in a missing directory": ("run", ["--storage", "{tmp}/missing/x.journal"], "is not a directory"),
    "corrupt journal": ("run", ["--storage", "{tmp}/garbage.journal"], "is not a readable Optuna journal"),
    "out under a file": (
        "run",
        ["--out", "{tmp}/a_file/results"],
        "its parent {tmp}/a_file is not an existing directory",
    ),
    "out with a missing parent": (
        "run",
        ["--out", "{tmp}/typo/results"],
        "its parent {tmp}/typo is not an existing directory",
    ),
    "out not writable": ("run", ["--out", "{read_only}/results"], "cannot use --out {read_only}/results: "),
    "unreachable database host": (
        "run",
        ["--storage", "postgresql://me@nonexistent.invalid/db"],
        "cannot open storage 'postgresql://me@nonexistent.invalid/db': failed to resolve host 'nonexistent.invalid'",
    ),
    "out is a file": (
        "run",
        ["--out", "{tmp}/a_file"],
        "argument --out: cannot use {tmp}/a_file: it exists and is not",
    ),
    "settings differ from stored": (
        "run",
        ["--workload", "moons", "--epochs", "5", "--families", "cosine", "--out", "{stored}"],
        "was made with epochs=3 (now 5)",
    ),
    "seed differs from stored": (
        "run",
        [*SWEEP, "--families", "cosine", "--seed", "4", "--out", "{stored}"],
        "seed=0 (now 4)",
    ),
    "data files missing": (
        "run",
        ["--workload", "mnist", "--data-dir", "{tmp}/empty"],
        "train-images-idx3-ubyte.gz (mnist) is not in {tmp}/empty or {tmp}/empty/mnist; place the canonical file there",
    ),
    "data file corrupt": (
        "train",
        ["--workload", "fashion-mnist", "--data-dir", "{tmp}/damaged", "--lr", "0.1"],
        "{tmp}/damaged/train-images-idx3-ubyte.gz is damaged or not the canonical file (md5 ",
    ),
    "hyperparameter out of range": (
        "train",
        [*TRAIN_STEP, "--param", "gamma=2", "--param", "step_fraction=0.2"],
        "step needs 0 < gamma <= 1, but got gamma=2",
    ),
    "negative LR": ("train", ["--lr", "-1"], "argument --lr: must be a positive number, got -1"),
    "LR as a param": ("train", [*TRAIN_STEP, "--param", "lr=3"], "give the base LR with --lr"),
    "unknown hyperparameter": (
        "train",
        ["--family", "cosine", "--lr", "0.1", "--param", "final_fraction=0.1", "--param", "gama=0.5"],
        "unknown parameter(s) gama for cosine; it takes: lr, final_fraction",
    ),
    "missing hyperparameter": (
        "train",
        [*TRAIN_STEP, "--param", "gamma=0.5"],
        "step needs --param step_fraction=...",
    ),
    "param without value": (
        "train",
        [*TRAIN_STEP, "--param", "gamma"],
        "--param expects NAME=VALUE, got 'gamma'",
    ),
    "no LR": ("train", ["--family", "constant"], "give --lr"),
    "unknown stored study": (
        "train",
        ["--from-study", "nope", "--trial", "0", "--out", "{stored}"],
        "no study 'nope' in that storage; it has: moons-sgd-cosine",
    ),
    "unknown stored trial": (
        "train",
        ["--from-study", "moons-sgd-cosine", "--trial", "9", "--out", "{stored}"],
        "has no trial 9; it has trials 0 to 1",
    ),
    "stored study without trial": (
        "train",
        ["--from-study", "moons-sgd-cosine", "--out", "{stored}"],
        "--from-study needs --trial N",
    ),
    "negative seed": ("run", ["--seed", "-1"], "argument --seed: must be between 0 and 4294967295, got -1"),
    "huge seed": ("train", [*TRAIN_STEP, "--seed", str(2**70)], "must be between 0 and 4294967295"),
    "negative seed, LR range test": ("lr_find", ["--seed", "-1"], "argument --seed: must be between 0"),
    "too many threads": (
        "run",
        ["--threads", "100000"],
        "100000 threads, but this machine lets this process use",
    ),
    "empty out": ("run", ["--out", ""], "argument --out: needs a directory, got an empty string"),
    "empty out, report": ("report", ["--out", ""], "argument --out: needs a directory"),
    "journal on a read-only file system": (
        "run",
        ["--storage", "{read_only}/x.journal"],
        "cannot lock the journal: {read_only}/x.journal",
    ),
    "journal is a FIFO": ("run", ["--storage", "{tmp}/fifo.journal"], "fifo.journal is not a regular file"),
    "journal with an unknown op code": (
        "run",
        ["--storage", "{tmp}/op99.journal"],
        "op99.journal is not a readable Optuna journal (a record Optuna",
    ),
    "lock path is a directory": (
        "run",
        ["--storage", "{tmp}/locked.journal"],
        "cannot lock the journal: {tmp}/locked.journal.lr-study.flock",
    ),
    "re-train from a missing journal": (
        "train",
        ["--from-study", "digits-sgd-cosine", "--trial", "0", "--out", "{tmp}/empty"],
        "no journal at {tmp}/empty/optuna.journal",
    ),
    "report from a missing journal": (
        "report",
        ["--storage", "{tmp}/empty/none.journal", "--out", "{tmp}/empty"],
        "no journal at {tmp}/empty/none.journal",
    ),
    "momentum for adam": ("run", ["--optimizer", "adam", "--momentum", "0.5"], "SGD settings; adam has none"),
    "momentum of 1": (
        "train",
        [*TRAIN_STEP, "--momentum", "1"],
        "momentum must be in [0, 1), but got momentum=1.0",
    ),
    "nan momentum": ("run", ["--momentum", "nan"], "momentum=nan"),
    "nesterov without momentum": ("run", ["--momentum", "0", "--nesterov"], "--nesterov needs momentum > 0"),
    "negative weight decay": ("run", ["--weight-decay", "-0.1"], "weight_decay=-0.1"),
    "schedule-free rmsprop": (
        "run",
        ["--optimizer", "rmsprop", "--families", "cosine,schedule_free"],
        "schedule_free needs an optimizer with a schedule-free variant (sgd, adamw), but got rmsprop",
    ),
    "schedule-free plain SGD": (
        "train",
        ["--family", "schedule_free", "--lr", "0.1", "--param", "warmup_fraction=0.1", "--momentum", "0"],
        "schedule-free SGD needs momentum > 0",
    ),
    "fractional integer knob": (
        "train",
        ["--family", "plateau", "--lr", "0.1", "--param", "factor=0.5", "--param", "patience=2.5"],
        "plateau needs a whole number for patience, but got 2.5",
    ),
    "text for a number": (
        "train",
        ["--family", "cosine", "--lr", "0.1", "--param", "final_fraction=abc"],
        "cosine needs a finite number for final_fraction, but got 'abc'",
    ),
    "nan knob": (
        "train",
        ["--family", "exponential", "--lr", "0.1", "--param", "gamma=nan"],
        "gamma, but got nan",
    ),
    "unknown choice": (
        "train",
        [
            "--family",
            "one_cycle",
            "--lr",
            "0.1",
            "--param",
            "pct_start=0.3",
            "--param",
            "div_factor=25",
            "--param",
            "final_div_factor=1e3",
            "--param",
            "anneal=bogus",
        ],
        "one_cycle needs anneal in ['cos', 'linear'], but got 'bogus'",
    ),
}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An out directory holding a finished tiny sweep, which no bad command may change."""
    from study.cli import run_main
    from study.run import main

    out = tmp_path_factory.mktemp("stored")
    with pytest.raises(SystemExit) as done:
        run_main(main, [*SWEEP, "--families", "cosine", "--trials", "2", "--out", str(out)])
    assert done.value.code == 0
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_line_and_exit_code_2(case: str, stored: Path, run_cli, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "garbage.journal").write_text("this is not json\n")
    (tmp_path / "dir.journal").mkdir()
    os.mkfifo(tmp_path / "fifo.journal")  # opening it to read would wait for a writer forever
    (tmp_path / "op99.journal").write_text('{"op_code":99,"worker_id":"w"}\n')
    (tmp_path / "empty").mkdir()
    (tmp_path / "locked.journal.lr-study.flock").mkdir()
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "train-images-idx3-ubyte.gz").write_bytes(b"not the canonical file")
    module, argv, message = CASES[case]
    # Root writes anywhere it has permission bits against it; /sys refuses even root.
    read_only = Path("/sys") if os.geteuid() == 0 else tmp_path / "read_only"
    if read_only != Path("/sys"):
        read_only.mkdir(mode=0o555)
    places = {"stored": stored, "tmp": tmp_path, "read_only": read_only}
    argv = [arg.format(**places) for arg in argv]
    journal = stored / "optuna.journal"
    before = journal.read_bytes()

    code, out, err = run_cli(module, *argv)

    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message.format(**places) in err
    assert "Traceback" not in out + err
    assert journal.read_bytes() == before
    assert not list((tmp_path / "empty").iterdir()), "reading created files"


def test_real_process_exit_code_and_stderr(tmp_path: Path) -> None:
    for module, argv in [("run", ["--trials", "0"]), ("train", ["--family", "nope"])]:
        done = run_subprocess(module, argv, timeout=60, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
        assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize(
    "module,argv",
    [("run", ["--trials", "1"]), ("train", TRAIN_STEP), ("report", [])],
)
def test_cuda_without_a_gpu_is_one_line_before_anything_is_asked(module, argv, stored: Path, run_cli) -> None:
    journal = stored / "optuna.journal"
    before = journal.read_bytes()
    code, _, err = run_cli(module, *argv, "--out", str(stored), "--device", "cuda")
    assert code == 2 and err.count("\n") == 1 and "PyTorch sees no CUDA GPU" in err
    assert journal.read_bytes() == before


def test_retraining_an_interrupted_or_failed_trial_is_one_line(run_cli, tmp_path: Path) -> None:
    assert run_cli("run", *SWEEP, "--families", "cosine", "--trials", "1", "--out", str(tmp_path))[0] == 0
    journal = str(tmp_path / "optuna.journal")
    study = optuna.load_study(study_name="moons-sgd-cosine", storage=open_storage(journal))
    interrupted = study.ask()
    interrupted.set_user_attr("interrupted", True)
    study.tell(interrupted, state=TrialState.FAIL)
    code, _, err = run_cli(
        "train", "--from-study", "moons-sgd-cosine", "--trial", "1", "--out", str(tmp_path)
    )
    assert code == 2 and err == (
        "error: trial 1 of 'moons-sgd-cosine' is FAIL and stored no run; choose a complete or pruned trial\n"
    )


def test_an_unreadable_journal_is_one_line(run_cli, tmp_path: Path, monkeypatch) -> None:
    journal = tmp_path / "optuna.journal"
    journal.write_bytes(b"")
    real_read = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path == journal:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    code, _, err = run_cli("run", *SWEEP, "--trials", "1", "--out", str(tmp_path))
    assert code == 2 and err == f"error: cannot use journal storage {journal}: Permission denied\n"


HEAVY = ("torch", "sklearn", "pandas", "scipy.stats", "matplotlib", "seaborn", "plotly")


@pytest.mark.parametrize("command", ["run", "report", "train", "lr_find"])
@pytest.mark.parametrize("argv", [["--help"], ["--trails", "5"], ["--workload", "mnst"]])
def test_help_and_bad_flags_import_no_heavy_library(command: str, argv: list[str]) -> None:
    """They answer before torch and friends load (about 0.3 s instead of 5 s here): checked by
    what Python imports, not by a clock."""
    assert not _heavy_imports(command, argv)


@pytest.mark.parametrize(
    "command,argv",
    [
        ("run", ["--storage", "mongodb://localhost/db"]),
        ("run", ["--storage", "postgresql://u@host:port/db"]),
        ("run", ["--storage", "sweep.db"]),
        ("run", ["--out", "{tmp}/a_file"]),
        ("report", ["--out", "{tmp}/no_sweep"]),
        ("report", ["--artifact-dir", "{tmp}/a_file"]),
        ("run", ["--workload", "mnist", "--data-dir", "{tmp}/no_such_dir"]),
        ("run", ["--workload", "mnist", "--data-dir", "{tmp}/no_sweep"]),  # no data files there
        ("run", ["--workload", "fashion-mnist", "--data-dir", "{tmp}/damaged"]),
        (
            "train",
            ["--workload", "mnist", "--data-dir", "{tmp}/no_sweep", "--family", "constant", "--lr", "0.1"],
        ),
        ("lr_find", ["--workload", "mnist", "--data-dir", "{tmp}/no_sweep"]),
        ("run", ["--storage", "postgresql://me@127.0.0.1:1/db"]),  # refuses connections
        ("run", ["--storage", "mysql://u@localhost/db"]),  # its driver is not installed
        ("report", ["--storage", "postgresql://me@127.0.0.1:1/db"]),
        ("run", [*SWEEP, "--families", "cosine", "--seed", "4", "--out", "{stored}"]),  # differs from stored
    ],
)
def test_a_bad_storage_directory_or_data_file_is_refused_before_heavy_imports(
    command: str, argv: list[str], tmp_path: Path, stored: Path
) -> None:
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "no_sweep").mkdir()
    (tmp_path / "damaged").mkdir()
    for name in FASHION_MNIST.files:
        (tmp_path / "damaged" / name).write_bytes(b"not the canonical file")
    assert not _heavy_imports(command, [a.format(tmp=tmp_path, stored=stored) for a in argv], expect_code=2)


def _heavy_imports(command: str, argv: list[str], expect_code: int | None = None) -> list[str]:
    """The heavy libraries ``python -m study.<command> <argv>`` imports before it answers."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", f"study.{command}", *argv], check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode in ((0, 2) if expect_code is None else (expect_code,)), done.stderr
    assert expect_code is None or done.stderr.count("\nerror: ") + done.stderr.startswith("error: ") == 1
    imported = {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    return sorted(imported & set(HEAVY))


def _as_a_user(command: list[str]) -> list[str]:
    """The command as a process that permission bits bind: root without its override."""
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("root needs setpriv (util-linux) to run a command that permission bits bind")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]


PERMISSION_CASES = {
    "out": ("run", ["--out", "{locked}/out"], "cannot use {locked}/out: Permission denied"),
    "storage": (
        "run",
        ["--storage", "{locked}/x.journal"],
        "cannot use {locked}/x.journal: Permission denied",
    ),
    "artifact dir": ("run", ["--artifact-dir", "{locked}/a"], "cannot use {locked}/a: Permission denied"),
    "data dir": ("run", ["--workload", "mnist", "--data-dir", "{locked}"], "Permission denied"),
    "report's out": ("report", ["--out", "{locked}/out"], "{locked}/out"),
    "report's storage": ("report", ["--storage", "{locked}/x.journal"], "{locked}/x.journal"),
    "report's artifact dir": ("report", ["--out", "{stored}", "--artifact-dir", "{locked}/a"], "{locked}/a"),
    "train's data dir": (
        "train",
        ["--workload", "mnist", "--lr", "0.1", "--data-dir", "{locked}"],
        "Permission denied",
    ),
    "unreadable MNIST file": (
        "run",
        ["--workload", "mnist", "--data-dir", "{unreadable}"],
        "Permission denied",
    ),
    "unreadable input.txt": (
        "run",
        ["--workload", "shakespeare", "--data-dir", "{unreadable}"],
        "Permission denied",
    ),
    "read-only journal": ("report", ["--out", "{read_only_journal}", "--seeds", "2"], "Permission denied"),
}


@pytest.mark.parametrize("case", list(PERMISSION_CASES))
def test_a_place_the_command_may_not_use_is_one_line(case: str, stored: Path, tmp_path: Path) -> None:
    module, argv, message = PERMISSION_CASES[case]
    locked, unreadable, read_only = tmp_path / "locked", tmp_path / "unreadable", tmp_path / "ro"
    locked.mkdir(mode=0o000)
    (unreadable / "mnist").mkdir(parents=True)
    (unreadable / "tinyshakespeare").mkdir()
    for name in ("mnist/train-images-idx3-ubyte.gz", "tinyshakespeare/input.txt"):
        (unreadable / name).write_bytes(b"")
        (unreadable / name).chmod(0o000)
    shutil.copytree(stored, read_only, ignore=shutil.ignore_patterns("report", ".report-*"))
    (read_only / "optuna.journal").chmod(0o444)
    places = {"locked": locked, "unreadable": unreadable, "stored": stored, "read_only_journal": read_only}
    argv = [arg.format(**places) for arg in argv]
    before = (read_only / "optuna.journal").read_bytes()
    try:
        done = subprocess.run(
            _as_a_user([sys.executable, "-m", f"study.{module}", *argv, *(["--trials", "1"] if module == "run" else [])]),
            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        locked.chmod(0o700)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and message.format(**places) in done.stderr, done.stderr
    assert (read_only / "optuna.journal").read_bytes() == before


def test_output_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    """A reader that closes the pipe early (``| head``) is not an error: no traceback, exit 141
    (it used to be caught by the general file-error handler first and shown whole)."""
    lines = "from study.cli import run_main\nrun_main(lambda argv: [print(k) for k in range(100_000)])\n"
    done = subprocess.run(
        f"{shlex.quote(sys.executable)} -c {shlex.quote(lines)} | head -1",
        shell=True, capture_output=True, text=True, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)}, executable="/bin/bash",
    )  # fmt: skip
    assert done.stdout == "0\n" and "Traceback" not in done.stderr, done.stderr


def test_a_name_over_the_file_systems_limit_is_one_line(run_cli, tmp_path: Path) -> None:
    """F5: an --out or --storage name of over 255 bytes was a 48-line OSError traceback."""
    long = tmp_path / ("x" * 300)
    for command, argv in (
        (
            "run",
            [
                "--workload",
                "moons",
                "--epochs",
                "1",
                "--trials",
                "1",
                "--families",
                "constant",
                "--out",
                str(long),
            ],
        ),
        ("report", ["--storage", str(tmp_path / ("y" * 300 + ".journal")), "--out", str(tmp_path)]),
    ):
        code, _, err = run_cli(command, *argv)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (command, err)


def test_an_ascii_terminal_gets_the_answer_escaped_not_a_traceback(tmp_path: Path) -> None:
    """F7: with PYTHONIOENCODING=ascii the report was published, then printing its ± raised."""
    done = run_subprocess(
        "run", ["--workload", "moons", "--epochs", "1", "--trials", "2", "--families", "constant,cosine", "--seeds",
                "2", "--repeats", "1", "--protocol", "budgeted", "--out", str(tmp_path)],
        env_extra={"PYTHONIOENCODING": "ascii"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\\xb1" in done.stdout and "Traceback" not in done.stderr


def test_a_non_utf8_byte_in_the_output_path_still_reports(run_cli, tmp_path: Path) -> None:
    """F6: the PNGs' provenance text could not encode a path with a non-UTF-8 byte."""
    out = Path(os.fsdecode(bytes(tmp_path) + b"/out\xff"))
    args = [
        "--workload",
        "moons",
        "--epochs",
        "1",
        "--trials",
        "2",
        "--families",
        "constant,cosine",
        "--seeds",
        "2",
    ]
    code, _, err = run_cli("run", *args, "--out", str(out))
    assert code == 0, err
    assert (out / "report" / "index.html").is_file()
    staged = [p.name for p in out.iterdir() if p.name.startswith(".report-")]
    assert staged == [os.readlink(out / "report")], "only the report's own copy, no failed attempt's"
