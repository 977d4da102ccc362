"""The classic benchmark files: find, download, verify and parse them.

A dataset is a list of canonical files with their md5s and the mirrors that serve them. A file
comes from ``--data-dir`` when one is given (``DIR/name`` or ``DIR/<dataset>/name``), otherwise
from the cache (``$LR_SCHEDULE_STUDY_CACHE``, default ``~/.cache/lr-schedule-study``), downloading
it there first if needed: to a temporary name, verified, then renamed, so a half-written file is
never taken for a good one. Every file's md5 is checked before it is parsed.

idx files (MNIST, Fashion-MNIST) are parsed with numpy: magic number, dimensions, length.
CIFAR-10 batches are read from the python-version archive, or from its extracted batches.

Anything wrong (offline, missing, truncated, corrupt) raises ``DataError``, one line naming the
file, what was expected and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

CACHE_ENV = "LR_SCHEDULE_STUDY_CACHE"
DOWNLOAD_TIMEOUT_S = 30


class DataError(Exception):
    """A data file is missing, unreachable or damaged; the message says which and what to do."""


@dataclass(frozen=True)
class Dataset:
    """Canonical files (name -> md5) and the base URLs that serve them, tried in order."""

    name: str
    files: dict[str, str]
    mirrors: tuple[str, ...]


MNIST = Dataset(
    name="mnist",
    files={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
)
FASHION_MNIST = Dataset(
    name="fashion-mnist",
    files={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
)
SHAKESPEARE_CONTEXT = 64
"""Characters a window holds: the model predicts each next one from up to 63 before it."""
SHAKESPEARE_VOCABULARY = 66
"""The 65 characters of the training block, plus the unknown symbol."""

SHAKESPEARE = Dataset(
    name="tinyshakespeare",
    files={"input.txt": "6fb458f1232090904fb40fe944165e91"},
    mirrors=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",),
)
CIFAR10_ARCHIVE = Dataset(
    name="cifar10",
    files={"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
)
CIFAR10_BATCHES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_FOLDER = "cifar-10-batches-py"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lr-schedule-study")


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _verified(path: Path, expected_md5: str, remedy: str) -> bytes:
    data = path.read_bytes()
    if (actual := md5_of(data)) != expected_md5:
        raise DataError(
            f"{path} is damaged or not the canonical file (md5 {actual}, expected {expected_md5}); {remedy}"
        )
    return data


def fetch(dataset: Dataset, name: str, data_dir: Path | None) -> bytes:
    """The verified bytes of one canonical file, from ``data_dir`` or the (filled) cache."""
    expected = dataset.files[name]
    if data_dir is not None:
        for path in (data_dir / name, data_dir / dataset.name / name):
            if path.is_file():
                return _verified(path, expected, f"replace it with the canonical {name}")
        raise DataError(
            f"{name} ({dataset.name}) is not in {data_dir} or {data_dir / dataset.name}; "
            "place the canonical file there, or leave out --data-dir to download it"
        )
    path = cache_dir() / dataset.name / name
    if not path.is_file():
        _download(dataset, name, path)
    return _verified(path, expected, "delete it to download it again")


def _stream(url: str, file: IO[bytes]) -> str:
    """Copy ``url`` into ``file`` chunk by chunk; return the md5 of what arrived."""
    digest = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            file.write(chunk)
    return digest.hexdigest()


def _download(dataset: Dataset, name: str, destination: Path) -> None:
    """Try each mirror; keep the first copy whose md5 is right, renamed into place whole."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create the data cache {destination.parent}: {error.strerror}; set {CACHE_ENV}"
        ) from None
    expected, failures = dataset.files[name], []
    for mirror in dataset.mirrors:
        url = mirror + name
        handle, partial = tempfile.mkstemp(dir=destination.parent, prefix=f".{name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                actual = _stream(url, file)
            if actual == expected:
                os.replace(partial, destination)
                return
            failures.append(f"{url}: md5 {actual}, expected {expected}")
        except (urllib.error.URLError, OSError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', error)}")
        finally:
            Path(partial).unlink(missing_ok=True)  # gone already when it was renamed into place
    raise DataError(
        f"could not download {name} ({dataset.name}) from any mirror ({'; '.join(failures)}); "
        "allow network access, or place the file in a directory and pass --data-dir DIR"
    )


# --- parsing ----------------------------------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(name: str, gzipped: bytes) -> np.ndarray:
    """An idx file (gzip-compressed) as an array, checking magic number, dimensions and length."""
    try:
        raw = gzip.decompress(gzipped)
    except (OSError, EOFError) as error:
        raise DataError(
            f"{name} is not a readable gzip file ({error}); replace it with the canonical file"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(
            f"{name} is not an idx file (bad magic number {raw[:4].hex()}); replace it with the canonical file"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name} is truncated inside its header; replace it with the canonical file")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{name} holds {len(raw) - header} data bytes but its header {shape} needs {expected}; "
            "replace it with the canonical file"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()  # writable, for torch


def load_idx_pair(dataset: Dataset, split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of ``split`` ('train' or 't10k')."""
    images_name, labels_name = f"{split}-images-idx3-ubyte.gz", f"{split}-labels-idx1-ubyte.gz"
    images = parse_idx(images_name, fetch(dataset, images_name, data_dir))
    labels = parse_idx(labels_name, fetch(dataset, labels_name, data_dir))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{images_name} {images.shape} and {labels_name} {labels.shape} do not match; "
            "replace them with the canonical files"
        )
    return images, labels


def _parse_cifar_batch(name: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = pickle.loads(data, encoding="bytes")  # md5-verified canonical content only
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as error:  # noqa: BLE001 -- any malformed pickle is the same user-facing problem
        raise DataError(
            f"{name} is not a CIFAR-10 python batch ({error}); replace it with the canonical file"
        ) from None
    if len(images) != len(labels):
        raise DataError(
            f"{name} has {len(images)} images but {len(labels)} labels; replace it with the canonical file"
        )
    return images, labels


def _cifar_batch_bytes(data_dir: Path | None) -> dict[str, bytes]:
    """The six verified batches: extracted ones in ``data_dir`` if there, else from the archive."""
    folders = [] if data_dir is None else [data_dir / CIFAR10_FOLDER, data_dir / "cifar10" / CIFAR10_FOLDER]
    for folder in filter(Path.is_dir, folders):
        batches = {}
        for name, md5 in CIFAR10_BATCHES.items():
            if not (folder / name).is_file():
                raise DataError(f"{folder / name} is missing; put all six CIFAR-10 batches in {folder}")
            batches[name] = _verified(folder / name, md5, "replace it with the canonical batch")
        return batches
    archive = fetch(CIFAR10_ARCHIVE, "cifar-10-python.tar.gz", data_dir)
    batches = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for name, md5 in CIFAR10_BATCHES.items():
                member = tar.extractfile(f"{CIFAR10_FOLDER}/{name}")
                batches[name] = member.read() if member is not None else b""
    except (tarfile.TarError, KeyError, EOFError, OSError) as error:
        raise DataError(
            f"cifar-10-python.tar.gz is not a readable CIFAR-10 archive ({error}); replace it"
        ) from None
    for name, md5 in CIFAR10_BATCHES.items():
        if md5_of(batches[name]) != md5:
            raise DataError(f"cifar-10-python.tar.gz holds no canonical {name}; replace the archive")
    return batches


def load_cifar10(
    data_dir: Path | None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train images, labels), (test images, labels); images (N, 3, 32, 32) uint8."""
    parsed = {name: _parse_cifar_batch(name, data) for name, data in _cifar_batch_bytes(data_dir).items()}
    train = [parsed[f"data_batch_{i}"] for i in range(1, 6)]
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])), parsed[
        "test_batch"
    ]
