"""The README's answer is made from the published results it describes: every family it names,
every count and share it quotes is checked here against ``results/standard``'s tables, so a stale
number fails (issue 37). ``answer_lines`` is how the README writes them."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.conftest import REPO

PUBLISHED = REPO / "results" / "standard"
PLACES = {
    "within the margin everywhere": "Within the margin of each workload's best on every workload",
    "worse somewhere": "Worse than the best on at least one workload",
    "not placed": "Not placed by the data",
}


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(PUBLISHED / name, comment="#")


def _workloads() -> list[str]:
    return sorted(p.name.removesuffix("-grid-verdicts.csv") for p in PUBLISHED.glob("*-grid-verdicts.csv"))


def answer_lines() -> list[str]:
    """The README's answer, line by line, from the published tables."""
    placement = _read("placement.csv")
    lines = []
    for word, said in PLACES.items():
        families = list(placement.loc[placement["placement"] == word, "family"])
        shown = ", ".join(f"`{f}`" for f in families) if families else "none"
        lines.append(f"- **{said}** ({len(families)} of {len(placement)}): {shown}.")
    for section in _workloads():
        verdicts = _read(f"{section}-grid-verdicts.csv")
        counts = verdicts["verdict"].value_counts()
        reference = verdicts.iloc[0]
        workload = section.rsplit("-", 1)[0]
        cells = " | ".join(
            str(int(counts.get(v, 0))) for v in ("worse", "equivalent", "better", "inconclusive")
        )
        lines.append(
            f"| `{workload}` | `{reference['family']}` at {reference['lr']:g} | {cells} | {int(reference['seeds'])} |"
        )
    for luck in sorted(PUBLISHED.glob("*-tuning_luck.csv")):
        table = _read(luck.name).set_index("component")
        workload = luck.name.removesuffix("-tuning_luck.csv").rsplit("-", 1)[0]
        cells = " | ".join(
            f"{row['share']:.0%} ({row['share_ci_low']:.0%} to {row['share_ci_high']:.0%})"
            for _, row in table.iterrows()
        )
        lines.append(f"| `{workload}` | {cells} |")
    return lines


@pytest.mark.skipif(
    not (PUBLISHED / "placement.csv").exists(), reason="no published grid study in results/standard"
)
def test_every_line_of_the_readmes_answer_is_the_published_tables() -> None:
    readme = (REPO / "README.md").read_text()
    answer = readme[readme.index("## The answer") : readme.index("## ", readme.index("## The answer") + 5)]
    missing = [line for line in answer_lines() if line not in answer]
    assert not missing, "\n".join(missing)


@pytest.mark.skipif(
    not (PUBLISHED / "placement.csv").exists(), reason="no published grid study in results/standard"
)
def test_the_readmes_count_of_conclusive_verdicts_is_the_tables() -> None:
    readme = (REPO / "README.md").read_text()
    verdicts = pd.concat([_read(f"{s}-grid-verdicts.csv") for s in _workloads()])
    compared = verdicts[verdicts["verdict"] != "reference"]
    conclusive = int((compared["verdict"] != "inconclusive").sum())
    said = re.search(r"\*\*(\d+) of (\d+) verdicts are conclusive\*\*", readme)
    assert said and (int(said.group(1)), int(said.group(2))) == (conclusive, len(compared))


REPLICATIONS = REPO / "results" / "replications"
QUOTED = re.compile(r"([+\u2212-]?\d+\.\d+) \(([+\u2212-]?\d+\.\d+) to ([+\u2212-]?\d+\.\d+)\)")
"""A number with its interval as the README quotes them: +0.057 (+0.047 to +0.067)."""


def _as_float(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def _decimals(text: str) -> int:
    return len(text.split(".")[1])


def test_the_readmes_claims_table_quotes_the_published_pages() -> None:
    """Issue 35/37: each claim's row says its page's outcome word, and every number it quotes with
    an interval is a row of that claim's CSV (lead, low, high), at the decimals quoted."""
    from study.replications import REPLICATIONS as CLAIMS

    readme = (REPO / "README.md").read_text()
    for name in CLAIMS:
        (line,) = [
            row for row in readme.splitlines() if f"`python -m study.replicate {name}`" in row and "|" in row
        ]
        verdict = (REPLICATIONS / name / f"{name}.md").read_text().splitlines()[0].split(": ")[1]
        assert f"**{verdict}**" in line, name
        table = pd.read_csv(REPLICATIONS / name / f"{name}.csv", comment="#")
        quoted = QUOTED.findall(line)
        assert quoted, f"{name}: the row quotes no number with its interval"
        for triple in quoted:
            places = _decimals(triple[0])
            wanted = tuple(round(_as_float(t), places) for t in triple)
            rows = {
                tuple(round(float(v), places) for v in (r.lead, r.ci_low, r.ci_high))
                for r in table.itertuples()
            }
            assert wanted in rows, (name, triple)


@pytest.mark.skipif(
    not (PUBLISHED / "placement.csv").exists(), reason="no published grid study in results/standard"
)
def test_the_readmes_count_of_small_worse_gaps_is_the_tables() -> None:
    """'K of the N worse verdicts are gaps also shown smaller than the margin, D of them on digits;
    on the other three workloads O of the M are': each count from the verdict tables."""
    from study.reporting.grid_render import trivial_gaps

    readme = " ".join((REPO / "README.md").read_text().split())
    tables = {s.rsplit("-", 1)[0]: _read(f"{s}-grid-verdicts.csv") for s in _workloads()}
    worse = {w: int((t["verdict"] == "worse").sum()) for w, t in tables.items()}
    small = {w: len(trivial_gaps(t)) for w, t in tables.items()}
    others = [w for w in tables if w != "digits"]
    said = (
        f"{sum(small.values())} of the {sum(worse.values())} *worse* verdicts are gaps also shown smaller than the "
        f"margin, {small['digits']} of them on `digits`"
    )
    assert said in readme
    assert (
        f"on the other three workloads {sum(small[w] for w in others)} of the {sum(worse[w] for w in others)} are"
        in readme
    )


@pytest.mark.skipif(
    not (PUBLISHED / "placement.csv").exists(), reason="no published grid study in results/standard"
)
def test_the_readmes_open_verdicts_and_the_seeds_that_would_settle_them_are_the_tables() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())
    for section in _workloads():
        table = _read(f"{section}-grid-verdicts.csv")
        for _, row in table[table["verdict"] == "inconclusive"].iterrows():
            workload = section.rsplit("-", 1)[0]
            assert f"(`{row['family']}` on `{workload}`)" in readme
            assert f"80% power by {int(row['seeds_needed'])} evaluation seeds" in readme
