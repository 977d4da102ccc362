"""The report stage: re-evaluation, statistics, sections, figures, the page, dashboard and artifacts."""
