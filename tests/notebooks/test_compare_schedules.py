"""The report notebook runs top to bottom against a tiny sweep made here, and is stored clean."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO, TINY

NOTEBOOK = REPO / "notebooks" / "compare_schedules.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_notebook_reproduces_the_tables_and_figures(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        *TINY,
        "--families",
        "constant,cosine,plateau",
        "--trials",
        "5",
        "--seeds",
        "2",
        "--protocol",
        "both",
        "--selection-seeds",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert run_cli("run", *args)[0] == 0
    # As a shell in tmp_path's parent would run it, with a relative path (the kernel starts in notebooks/).
    monkeypatch.setenv("PWD", str(tmp_path.parent))
    monkeypatch.setenv("LR_STUDY_RESULTS", tmp_path.name)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 7, "every figure of the budgeted section (the grid's tables are shown as tables)"
    html = "".join(output.get("data", {}).get("text/html", "") for output in outputs)
    assert "test_metric" in html and "verdict" in html  # the ranking and the pairwise table
    text = "".join(output.get("data", {}).get("text/markdown", "") for output in outputs)
    assert "Reference (chosen by validation accuracy" in text
    assert (
        "grid protocol" in text and "Reference: " in text and "at base LR" in text
    )  # the grid's answer first
    assert text.index("grid protocol") < text.index("Reference (chosen by validation accuracy")
    streams = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "Warning" not in streams, streams  # a clean run prints no warning
