"""Finding, downloading, verifying and parsing data files, on tiny files these tests make.

Downloads go through the real urllib code to a real HTTP server on 127.0.0.1 that serves a
temporary directory; "offline" is a port nothing listens on.
"""

from __future__ import annotations

import gzip
import http.server
import io
import pickle
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from objectives.stored import stored_curve
from objectives.workloads import datasets
from objectives.workloads.datasets import (
    DataError,
    Dataset,
    fetch,
    load_cifar10,
    load_idx_pair,
    md5_of,
    parse_idx,
)
from objectives.workloads.registry import get_workload
from study.reporting.analysis import load_studies

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file (gzip-compressed) holding a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def tiny_mnist(directory: Path, *, train: int = 60, test: int = 20) -> dict[str, str]:
    """Write the four MNIST-format files (every class equally often); return name -> md5."""
    rng = np.random.default_rng(0)
    contents = {}
    for split, count in (("train", train), ("t10k", test)):
        labels = np.arange(count) % 10
        contents[f"{split}-images-idx3-ubyte.gz"] = idx_bytes(rng.integers(0, 256, (count, 28, 28)))
        contents[f"{split}-labels-idx1-ubyte.gz"] = idx_bytes(labels)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (directory / name).write_bytes(data)
    return {name: md5_of(data) for name, data in contents.items()}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(base URL, the directory it serves, the paths requested so far)."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served, requests
    httpd.shutdown()


OFFLINE = "http://127.0.0.1:1/"  # nothing listens on port 1: connection refused at once


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(datasets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


# --- parsing ----------------------------------------------------------------------------------


def test_idx_round_trip() -> None:
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx("x", idx_bytes(images)), images)
    np.testing.assert_array_equal(parse_idx("y", idx_bytes(np.array([3, 1, 4]))), [3, 1, 4])


@pytest.mark.parametrize(
    "data,message",
    [
        pytest.param(b"not gzip at all", "x is not a readable gzip file", id="not gzip"),
        pytest.param(idx_bytes(np.zeros((2, 3)))[:-6], "x is not a readable gzip file", id="truncated gzip"),
        pytest.param(
            gzip.compress(b"\x08\x08\x08\x01\x00\x00\x00\x02ab", mtime=0),
            "x is not an idx file (bad magic number 08080801)",
            id="bad magic",
        ),
        pytest.param(
            gzip.compress(bytes([0, 0, 8, 3, 0, 0]), mtime=0),
            "x is truncated inside its header",
            id="short header",
        ),
        pytest.param(
            gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), mtime=0),
            "x holds 2 data bytes but its header (5,) needs 5",
            id="short data",
        ),
    ],
)
def test_damaged_idx_files_are_named_with_what_to_do(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        parse_idx("x", data)
    assert "replace it with the canonical file" in str(error.value)


def test_images_and_labels_must_match(tmp_path: Path) -> None:
    md5s = tiny_mnist(tmp_path)
    labels = idx_bytes(np.arange(7) % 10)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(labels)
    dataset = Dataset("tiny", {**md5s, "train-labels-idx1-ubyte.gz": md5_of(labels)}, ())
    with pytest.raises(DataError, match=r"\(60, 28, 28\) and train-labels-idx1-ubyte.gz \(7,\) do not match"):
        load_idx_pair(dataset, "train", tmp_path)


# --- a local directory --------------------------------------------------------------------------


def test_data_dir_is_read_directly_or_per_dataset(tmp_path: Path) -> None:
    md5s = tiny_mnist(tmp_path / "tiny")
    dataset = Dataset("tiny", md5s, (OFFLINE,))
    for data_dir in (tmp_path, tmp_path / "tiny"):
        images, labels = load_idx_pair(dataset, "t10k", data_dir)
        assert images.shape == (20, 28, 28) and labels.tolist() == [i % 10 for i in range(20)]


def test_data_dir_with_a_damaged_or_missing_file(tmp_path: Path) -> None:
    md5s = tiny_mnist(tmp_path)
    dataset = Dataset("tiny", md5s, (OFFLINE,))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(
        DataError,
        match=f"t10k-labels-idx1-ubyte.gz is damaged .*expected {md5s['t10k-labels-idx1-ubyte.gz']}",
    ):
        fetch(dataset, "t10k-labels-idx1-ubyte.gz", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        DataError,
        match=f"t10k-labels-idx1-ubyte.gz \\(tiny\\) is not in {tmp_path}.*place the canonical file",
    ):
        fetch(dataset, "t10k-labels-idx1-ubyte.gz", tmp_path)


# --- downloading and the cache -------------------------------------------------------------------


def test_download_verifies_caches_and_reuses(server, cache: Path) -> None:
    url, served, requests = server
    md5s = tiny_mnist(served)
    dataset = Dataset("tiny", md5s, (url,))

    images, _ = load_idx_pair(dataset, "train", None)
    assert images.shape == (60, 28, 28)
    assert sorted(requests) == ["/train-images-idx3-ubyte.gz", "/train-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in (cache / "tiny").iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]

    load_idx_pair(dataset, "train", None)
    assert len(requests) == 2, "a cached file is not downloaded again"


def test_next_mirror_when_one_is_down_or_serves_a_damaged_file(server, cache: Path) -> None:
    url, served, requests = server
    md5s = tiny_mnist(served)
    good = (served / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (served / "damaged").mkdir()
    (served / "damaged" / "t10k-labels-idx1-ubyte.gz").write_bytes(good[:-3])
    dataset = Dataset("tiny", md5s, (OFFLINE, url + "missing/", url + "damaged/", url))
    assert fetch(dataset, "t10k-labels-idx1-ubyte.gz", None) == good
    assert requests == [
        "/missing/t10k-labels-idx1-ubyte.gz",
        "/damaged/t10k-labels-idx1-ubyte.gz",
        "/t10k-labels-idx1-ubyte.gz",
    ]
    assert [p.name for p in (cache / "tiny").iterdir()] == ["t10k-labels-idx1-ubyte.gz"]


def test_offline_or_only_damaged_copies_raise_one_line_and_leave_nothing(server, cache: Path) -> None:
    url, served, _ = server
    md5s = tiny_mnist(served)
    (served / "t10k-images-idx3-ubyte.gz").write_bytes(b"truncated")
    dataset = Dataset("tiny", md5s, (OFFLINE, url))
    with pytest.raises(DataError) as error:
        fetch(dataset, "t10k-images-idx3-ubyte.gz", None)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("could not download t10k-images-idx3-ubyte.gz (tiny) from any mirror")
    assert f"{OFFLINE}t10k-images-idx3-ubyte.gz: [Errno 111] Connection refused" in message
    assert (
        f"{url}t10k-images-idx3-ubyte.gz: md5 {md5_of(b'truncated')}, expected {md5s['t10k-images-idx3-ubyte.gz']}"
        in message
    )
    assert message.endswith("allow network access, or place the file in a directory and pass --data-dir DIR")
    assert list((cache / "tiny").iterdir()) == [], "no partial file may stay behind"


def test_a_damaged_cached_file_is_reported(cache: Path) -> None:
    dataset = Dataset("tiny", {"a.gz": md5_of(b"good")}, (OFFLINE,))
    (cache / "tiny").mkdir(parents=True)
    (cache / "tiny" / "a.gz").write_bytes(b"bad")
    with pytest.raises(
        DataError, match="a.gz is damaged or not the canonical file .* delete it to download it again"
    ):
        fetch(dataset, "a.gz", None)


# --- CIFAR-10 ------------------------------------------------------------------------------------


def _cifar_batches(count: int = 20) -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    return {
        name: pickle.dumps(
            {
                b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                b"labels": [i % 10 for i in range(count)],
            }
        )
        for name in datasets.CIFAR10_BATCHES
    }


@pytest.fixture
def tiny_cifar(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    batches = _cifar_batches()
    monkeypatch.setattr(datasets, "CIFAR10_BATCHES", {name: md5_of(data) for name, data in batches.items()})
    return batches


def _archive(batches: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_cifar_from_extracted_batches(tiny_cifar: dict[str, bytes], tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in tiny_cifar.items():
        (folder / name).write_bytes(data)
    (x, y), (x_test, y_test) = load_cifar10(tmp_path)
    assert x.shape == (100, 3, 32, 32) and y.shape == (100,) and x_test.shape == (20, 3, 32, 32)
    assert y_test.tolist() == [i % 10 for i in range(20)]
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3 is missing; put all six CIFAR-10 batches in"):
        load_cifar10(tmp_path)


def test_cifar_archive_downloaded_and_read_in_memory(tiny_cifar, server, cache, monkeypatch) -> None:
    url, served, _ = server
    archive = _archive(tiny_cifar)
    (served / "cifar-10-python.tar.gz").write_bytes(archive)
    monkeypatch.setattr(
        datasets, "CIFAR10_ARCHIVE", Dataset("cifar10", {"cifar-10-python.tar.gz": md5_of(archive)}, (url,))
    )
    (x, y), (x_test, _) = load_cifar10(None)
    assert x.shape == (100, 3, 32, 32) and y[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert x_test.shape == (20, 3, 32, 32)
    assert (cache / "cifar10" / "cifar-10-python.tar.gz").read_bytes() == archive


def test_cifar_archive_without_a_batch_or_with_a_bad_pickle(tiny_cifar, tmp_path, monkeypatch) -> None:
    incomplete = _archive({k: v for k, v in tiny_cifar.items() if k != "test_batch"})
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(incomplete)
    monkeypatch.setattr(
        datasets, "CIFAR10_ARCHIVE", Dataset("cifar10", {"cifar-10-python.tar.gz": md5_of(incomplete)}, ())
    )
    with pytest.raises(DataError, match="not a readable CIFAR-10 archive"):
        load_cifar10(tmp_path)
    with pytest.raises(DataError, match="data_batch_1 is not a CIFAR-10 python batch"):
        datasets._parse_cifar_batch("data_batch_1", pickle.dumps({b"labels": [1]}))


# --- the workloads on top ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist-cnn"])
def test_idx_workloads_carve_a_stratified_validation_split(name: str, tmp_path: Path, monkeypatch) -> None:
    dataset = datasets.MNIST if name == "mnist" else datasets.FASHION_MNIST
    for file_name, md5 in tiny_mnist(tmp_path / dataset.name).items():
        monkeypatch.setitem(dataset.files, file_name, md5)
    splits = get_workload(name).load(0, tmp_path)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (50, 10, 20)
    assert sorted(splits.y_val.tolist()) == list(range(10))
    assert splits.x_train.shape[1:] == (1, 28, 28) and 0 <= splits.x_train.min() and splits.x_train.max() <= 1
    assert torch.equal(get_workload(name).load(0, tmp_path).x_val, splits.x_val)


def test_cifar_workload_is_normalized_with_training_statistics(tiny_cifar, tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in tiny_cifar.items():
        (folder / name).write_bytes(data)
    splits = get_workload("cifar10").load(0, tmp_path)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (90, 10, 20)
    np.testing.assert_allclose(splits.x_train.mean(dim=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(splits.x_train.std(dim=(0, 2, 3)), 1, atol=1e-5)


@pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir(), reason="the real MNIST files are not on this machine"
)
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_files_verify_and_parse(name: str) -> None:
    splits = get_workload(name).load(0, SHARED_DATA)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (50_000, 10_000, 10_000)
    assert (
        torch.bincount(splits.y_train).tolist() == torch.bincount(splits.y_val).mul(5).tolist()
        or name == "mnist"
    )
    assert (
        splits.x_train.shape[1:] == (1, 28, 28)
        and float(splits.x_train.min()) == 0.0
        and float(splits.x_train.max()) == 1.0
    )
    assert (
        splits.y_test[:10].tolist()
        == {"mnist": [7, 2, 1, 0, 4, 1, 4, 9, 5, 9], "fashion-mnist": [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]}[name]
    )


def test_sweep_on_a_file_workload(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for file_name, md5 in tiny_mnist(tmp_path / "data").items():
        monkeypatch.setitem(datasets.MNIST.files, file_name, md5)
    args = [
        "--workload",
        "mnist",
        "--data-dir",
        str(tmp_path / "data"),
        "--epochs",
        "2",
        "--families",
        "constant",
    ]
    code, out, err = run_cli("run", *args, "--trials", "2", "--out", str(tmp_path / "out"))
    assert "mnist, sgd: 2 trials per family and tuning run, target val_acc 0.975" in out
    assert code == 0, err
    study = load_studies(str(tmp_path / "out" / "optuna.journal"))["mnist-sgd-constant"]
    assert study.user_attrs["workload"] == "mnist" and len(study.trials) == 2
    assert [len(stored_curve(t.user_attrs)["epoch"]) for t in study.trials] == [2, 2]
