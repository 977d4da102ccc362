"""Tuning every schedule family with Optuna (``study.sweep``) and reporting the comparison
(``study.reporting``); the commands are ``python -m study.run``, ``study.report``, ``study.train``
and ``study.lr_find``.

The public API, for notebooks: reading stored studies and rebuilding the report's sections.
Imported on first use, so that a command's ``--help`` loads none of it."""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "load_studies": "study.reporting.analysis",
    "study_metric": "study.reporting.analysis",
    "summary_table": "study.reporting.analysis",
    "trials_frame": "study.reporting.analysis",
    "build_section": "study.reporting.sections",
    "build_grid_section": "study.reporting.grid",
    "grid_headline": "study.reporting.grid_render",
    "draw_section": "study.reporting.figures",
    "figure_captions": "study.reporting.render",
    "group_studies": "study.reporting.sections",
    "headline": "study.reporting.render",
}
__all__ = [
    "build_grid_section",
    "build_section",
    "draw_section",
    "figure_captions",
    "grid_headline",
    "group_studies",
    "headline",
    "load_studies",
    "study_metric",
    "summary_table",
    "trials_frame",
]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'study' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), _RENAMED.get(name, name))


_RENAMED = {"grid_headline": "headline"}
"""Public names that differ from the module's own (``grid_render.headline``)."""
