"""Reports: pure functions of the results store (:mod:`xstilts.store`).

Nothing here trains or loads a model. :func:`summarize` (:mod:`.summary`) turns
the store's metric rows (and per-example scores, when stored) into the numbers
of the paper's tables; :func:`build_report` renders them with :mod:`.render`
(the one renderer, shared with the studies and the quickstart) as a
self-contained HTML page, a Markdown file, PNG plots, a CSV and a JSON summary,
with the study sections (``xstilts study``) it is given appended;
:func:`export_predictions` (:mod:`.export`) copies saved predictions into the
google-research/xtreme submission layout.

How the numbers are aggregated (also written into every report):

* Primary metric per target: ``primary_metrics[target]`` if given, else the
  task's own :attr:`xstilts.tasks.TaskSpec.primary_metric` (the first of its
  ``metrics``; a task defined in a run's config: as that config defines it),
  the same number model selection and studies read.
* Evaluation split per target: ``eval_split`` if given, else ``test`` when
  present, else the most common non-``dev`` split, else ``dev``.
* Score of one (setting, target, seed): the unweighted mean of the primary
  metric over the target's evaluation languages (XTREME-style: every language
  counts the same, whatever its size).
* Table cell: mean +- sample std (``ddof=1``) of those per-seed scores.
* Delta vs the baseline setting: per seed present in both, the mean over the
  languages present in both of (setting - baseline); mean +- std of those.
* Significance: :func:`paired_bootstrap` (see there for what is resampled).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..stats import paired_bootstrap
from . import render
from .export import export_predictions
from .render import format_delta, format_rows, format_score, md_table
from .summary import BENCHMARKS, summarize

__all__ = ["BENCHMARKS", "build_report", "export_predictions", "format_delta", "format_rows", "format_score",
           "md_table", "paired_bootstrap", "summarize"]


def build_report(store, out_dir: str | os.PathLike, *, baseline: str = "none", selection: str = "en-dev",
                 benchmark: str | Iterable[str] = BENCHMARKS, title: str = "xstilts results",
                 studies: Iterable[tuple[dict, Path]] = (), **kwargs) -> dict:
    """Render the paper's tables and figures from the store into ``out_dir``.

    Args:
        store: a :class:`xstilts.store.Store` or the path of its file.
        out_dir: output folder (created).
        baseline, selection, benchmark: see :func:`summarize`.
        title: page title.
        studies: study sections to append, as ``(section, its folder)`` pairs in order; ``xstilts report``
            passes those found next to the store (:func:`xstilts.studies.load_sections`). The report
            does not import the studies: they depend on its renderer.
        **kwargs: passed to :func:`summarize` (``eval_split``,
            ``primary_metrics``, ``model``, ``n_resamples``, ``bootstrap_seed``,
            ``alpha``, ``ddof``).

    Returns:
        Written paths: ``html`` (self-contained: plots embedded as base64),
        ``markdown`` (plots referenced as files), ``json`` (every number, as
        fractions), ``csv`` (the main table, long form), ``deltas`` (PNG) and
        ``heatmap:<target>`` (PNG) for each target with a non-baseline setting,
        and ``study:<name>`` (its ``section.json``) for each study section appended.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(store, baseline=baseline, selection=selection, benchmark=benchmark, **kwargs)
    paths: dict[str, Path] = {}

    plots = []
    p = render.delta_plot(summary, out_dir / "deltas.png")
    if p:
        paths["deltas"] = p
        plots.append(("Δ over the baseline", p))
    for t in summary["targets"]:
        p = render.heatmap(summary, t, out_dir / f"heatmap-{render.safe_name(t)}.png")
        if p:
            paths[f"heatmap:{t}"] = p
            plots.append((f"{t}: per-language Δ", p))

    csv = out_dir / "table.csv"
    pd.DataFrame([{k: v for k, v in c.items() if k not in ("per_seed",)} for c in summary["table"]]).to_csv(
        csv, index=False)
    paths["csv"] = csv
    js = out_dir / "summary.json"
    js.write_text(json.dumps(summary, indent=1, default=render.json_default), encoding="utf-8")
    paths["json"] = js

    sections = render.report_tables(summary)
    studies = list(studies)
    for sec, folder in studies:
        paths[f"study:{sec.get('name')}"] = folder / "section.json"
    md = out_dir / "report.md"
    md.write_text(render.render_markdown(title, summary, sections, plots, out_dir, studies), encoding="utf-8")
    paths["markdown"] = md
    page = out_dir / "report.html"
    page.write_text(render.render_html(title, summary, sections, plots, studies), encoding="utf-8")
    paths["html"] = page
    return paths
