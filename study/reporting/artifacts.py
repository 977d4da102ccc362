"""The report's figures and tables in Optuna's artifact store, for optuna-dashboard's artifact view.

``--artifact-dir DIR`` uploads each section's PNG figures and CSV tables to every study of that
section (``optuna.artifacts``), so each family's dashboard page carries the whole comparison it
is part of; ``optuna-dashboard STORAGE --artifact-dir DIR`` shows them. A file already stored
under its name with the same content is not uploaded again (the same table or pixels: the
provenance line each file carries, with its date and wall time, does not count); a changed one (a later report on more
trials) is added beside the earlier version, which the dashboard's delete button removes:
Optuna offers no public way to replace an artifact.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import optuna
import PIL.Image
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from objectives import stored
from objectives.stored import stored_experiment
from study.storage.backends import allow_experimental

UPLOADED = ("png", "csv")
"""The report files a study's artifacts hold: figures and tables (the page embeds them all)."""


def upload_report_files(studies: Sequence[optuna.Study], report: Path, artifact_dir: Path) -> int:
    """Upload ``report``'s files of each study's section to the study; return how many uploads
    were new (unchanged files are skipped)."""
    store = FileSystemArtifactStore(str(artifact_dir))
    uploads = 0
    for study in studies:
        experiment = stored_experiment(stored.attrs_of(study))
        prefix = f"{experiment.workload}-{experiment.optimizer_label}-"
        files = sorted(p for ext in UPLOADED for p in report.glob(f"{prefix}*.{ext}"))
        uploads += sum(_upload_if_changed(study, store, path) for path in files)
    return uploads


def substance(name: str, content: bytes) -> bytes:
    """A report file's content without the provenance it carries (``render.write_report``): a
    CSV's first ``#`` line, a PNG's text chunks (its pixels are compared)."""
    if name.endswith(".png"):
        return PIL.Image.open(io.BytesIO(content)).tobytes()
    if name.endswith(".csv") and content.startswith(b"#"):
        return content.partition(b"\n")[2]
    return content


def _upload_if_changed(study: optuna.Study, store: FileSystemArtifactStore, path: Path) -> bool:
    """Upload ``path`` unless one of the study's artifacts of that name holds the same content."""
    content = substance(path.name, path.read_bytes())
    for meta in get_all_artifact_meta(study):
        if meta.filename == path.name:
            try:
                with store.open_reader(meta.artifact_id) as reader:
                    if substance(path.name, reader.read()) == content:
                        return False
            except ArtifactNotFound:  # its file was deleted from DIR: upload it again
                continue
    with allow_experimental():
        upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
    return True
