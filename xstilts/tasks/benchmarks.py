"""Benchmark groups as data: XTREME and XTREME-R, their categories, tasks and catalogue tasks.

The groups are plain data; :func:`xtreme_score` (below) aggregates per-task, per-language results over
them as the official ``evaluate.py`` does. A test checks that every catalogue task named here is
registered. This module imports nothing from the rest of xstilts but its error type, so the metric
definitions (:mod:`xstilts.metrics`) and the task registry never depend on it.

Task names in ``categories`` / ``tasks`` are the official google-research/xtreme ``evaluate.py`` names
(``XTREME_GROUP2TASK`` / ``XTREME_R_GROUP2TASK`` / ``*_TASK2LANGS`` keys); they are the keys
``xtreme_score`` reports. ``catalogue`` maps each official name to the catalogue tasks that stand for
it, the benchmark's own first: under XTREME-R the catalogue's ``udpos_r`` / ``panx_r`` (XTREME-R's
language lists) stand for udpos / panx and win over the XTREME tasks when both are given. LAReQA is an
XTREME-R task but belongs to no official group.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import XstiltsError


XTREME_CATEGORIES: dict[str, tuple[str, ...]] = {
    "classification": ("pawsx", "xnli"),
    "tagging": ("udpos", "panx"),
    "qa": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("bucc2018", "tatoeba"),
}
XTREME_R_CATEGORIES: dict[str, tuple[str, ...]] = {
    "classification": ("xnli", "xcopa"),
    "tagging": ("udpos", "panx"),
    "qa": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("tatoeba", "mewsli-x"),
    "multi_choice": ("xcopa",),
}
XTREME_TASKS = ("pawsx", "xnli", "panx", "udpos", "bucc2018", "tatoeba", "xquad", "mlqa", "tydiqa")
XTREME_R_TASKS = ("xnli", "panx", "udpos", "tatoeba", "xcopa", "lareqa", "mewsli-x", "xquad", "mlqa", "tydiqa")

# official task -> the catalogue tasks standing for it (the benchmark's own first)
XTREME_CATALOGUE: dict[str, tuple[str, ...]] = {t: (t,) for t in XTREME_TASKS}
XTREME_R_CATALOGUE: dict[str, tuple[str, ...]] = {
    **{t: (t,) for t in XTREME_R_TASKS},
    "udpos": ("udpos_r", "udpos"),
    "panx": ("panx_r", "panx"),
    "mewsli-x": ("mewsli_x",),
}

BENCHMARKS: dict[str, dict] = {
    "xtreme": {"categories": XTREME_CATEGORIES, "tasks": XTREME_TASKS, "catalogue": XTREME_CATALOGUE},
    "xtreme-r": {"categories": XTREME_R_CATEGORIES, "tasks": XTREME_R_TASKS, "catalogue": XTREME_R_CATALOGUE},
}

# QA tasks score (exact_match + f1) / 2 in both benchmarks
QA_TASKS = frozenset(XTREME_CATEGORIES["qa"])

# other spellings of official task names (matched case- and -/_-insensitively), in every benchmark
TASK_ALIASES = {"bucc": "bucc2018", "mewslix": "mewsli-x", "pos": "udpos", "ner": "panx", "wikiann": "panx"}

# --------------------------------------------------------------------------- #
# Benchmark aggregate scores
# --------------------------------------------------------------------------- #

# The groups are data next to the catalogue (xstilts.tasks.benchmarks); official names are the keys reported.
_BENCHMARKS = {name: (b["categories"], b["tasks"]) for name, b in BENCHMARKS.items()}
_TASK_ALIASES = TASK_ALIASES


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


# Per benchmark, the catalogue tasks spelled differently from the official task they stand for
# (XTREME-R: udpos_r -> udpos, panx_r -> panx).
_VARIANTS = {name: {_key(c): task for task, cats in b["catalogue"].items() for c in cats if _key(c) != _key(task)}
             for name, b in BENCHMARKS.items()}


def _canonical_task(name: str, known: Iterable[str], bench: str = "xtreme") -> str:
    key = name.lower().replace("-", "").replace("_", "")
    for task in known:
        if key == task.replace("-", ""):
            return task
    variants = _VARIANTS.get(bench, {})
    if key in variants:
        return variants[key]
    alias = _TASK_ALIASES.get(key)
    return alias if alias is not None else name


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _task_score(task: str, by_lang: Mapping[str, Any]) -> float | None:
    """Official ``avg_metric`` of one task from its per-language results.

    Per metric, the plain mean over languages (``sum / len`` as evaluate.py);
    then QA tasks take ``(avg_exact_match + avg_f1) / 2``, the others avg F1,
    else avg accuracy, else avg mAP@20. A per-language value may be a number
    (already the task metric) or a mapping metric -> value.
    """
    if not by_lang:
        return None
    per_metric: dict[str, list[float]] = collections.defaultdict(list)
    for lang, value in by_lang.items():
        if isinstance(value, Mapping):
            for m, v in value.items():
                if v is not None:
                    per_metric[m].append(float(v))
        else:
            per_metric["value"].append(float(value))
    avg = {m: sum(vs) / len(vs) for m, vs in per_metric.items()}
    if task in QA_TASKS and "exact_match" in avg and "f1" in avg:
        return (avg["exact_match"] + avg["f1"]) / 2
    for m in ("value", "f1", "accuracy", "map@20"):
        if m in avg:
            return avg[m]
    return None


def xtreme_score(
    per_task_lang: Mapping[str, Mapping[str, Any]],
    tasks: Iterable[str] | None = None,
    benchmark: str = "xtreme",
) -> dict[str, Any]:
    """XTREME / XTREME-R aggregate scores as google-research/xtreme ``evaluate.py``.

    Task score (``avg_metric``): per metric the unweighted mean over languages;
    QA tasks (XQuAD, MLQA, TyDiQA) score ``(EM + F1) / 2``, the others F1
    (PAN-X, UD-POS, BUCC), accuracy (XNLI, PAWS-X, XCOPA, Tatoeba) or mAP@20
    (Mewsli-X, LAReQA). Group score = mean of its tasks' scores. Overall =
    mean over ALL the benchmark's tasks (9 for XTREME, 10 for XTREME-R), not
    over the groups.

    Groups are the official ones: XTREME classification (pawsx, xnli), tagging
    (udpos, panx), qa (xquad, mlqa, tydiqa), retrieval (bucc2018, tatoeba);
    XTREME-R classification (xnli, xcopa), tagging, qa, retrieval (tatoeba,
    mewsli-x) and multi_choice (xcopa). For XTREME-R the catalogue's
    ``udpos_r`` / ``panx_r`` (XTREME-R's language lists) stand for udpos /
    panx (and win over them when both are given).

    Deviations: the official script needs every language of a task's list;
    here a task is the mean over the languages given. The official XTREME-R
    overall score cannot be computed by evaluate.py (LAReQA has an empty
    language list, so its ``avg_metric`` is missing); here it is the mean over
    the 10 tasks as the official formula intends. A QA task given plain
    numbers (not ``{"exact_match", "f1"}`` mappings) uses those numbers as its
    score, which is NOT the official value; such tasks are listed in
    ``qa_without_em``.

    Args:
        per_task_lang: task -> language -> value, where a value is either the
            task metric (fraction) or a mapping metric -> fraction (e.g.
            ``{"exact_match": .6, "f1": .7}``). Task names are matched case-
            and ``-``/``_``-insensitively (``paws-x``, ``mewslix``, ``bucc``).
        tasks: if given, only these tasks of ``per_task_lang`` are used.
        benchmark: ``"xtreme"`` or ``"xtreme-r"``.

    Returns:
        Dict with ``benchmark``; ``tasks`` (task -> score for every task with
        results, benchmark or not); ``categories`` (group -> mean, None if a
        task of it is missing); ``overall`` (None unless every task of the
        benchmark is present); ``missing_tasks``; ``unscored_tasks`` (given
        tasks outside the benchmark); ``qa_without_em``;
        ``categories_partial`` (group -> mean over its present tasks) and
        ``overall_partial`` (mean over the benchmark tasks present) - partial
        numbers are NOT comparable to published scores.

    Raises:
        XstiltsError: for an unknown benchmark.
    """
    bench = benchmark.lower()
    if bench not in _BENCHMARKS:
        raise XstiltsError(f"xtreme_score: unknown benchmark {benchmark!r}; expected xtreme or xtreme-r")
    categories, known = _BENCHMARKS[bench]

    selected = None if tasks is None else {_canonical_task(t, known, bench) for t in tasks}
    task_scores: dict[str, float] = {}
    from_variant: set[str] = set()
    qa_without_em: list[str] = []
    for name, by_lang in per_task_lang.items():
        task = _canonical_task(name, known, bench)
        if selected is not None and task not in selected:
            continue
        variant = task != name and _key(name) in _VARIANTS[bench]
        if task in from_variant and not variant:
            continue  # udpos_r / panx_r win over udpos / panx under XTREME-R
        score = _task_score(task, by_lang)
        if score is None:
            continue
        task_scores[task] = score
        if variant:
            from_variant.add(task)
        if task in QA_TASKS and not all(
            isinstance(v, Mapping) and "exact_match" in v and "f1" in v for v in by_lang.values()
        ):
            qa_without_em.append(task)

    cat_scores: dict[str, float | None] = {}
    cat_partial: dict[str, float | None] = {}
    for cat, cat_tasks in categories.items():
        present = [task_scores[t] for t in cat_tasks if t in task_scores]
        cat_partial[cat] = sum(present) / len(present) if present else None
        cat_scores[cat] = cat_partial[cat] if len(present) == len(cat_tasks) else None

    in_bench = [task_scores[t] for t in known if t in task_scores]
    return {
        "benchmark": bench,
        "tasks": task_scores,
        "categories": cat_scores,
        "overall": sum(in_bench) / len(known) if len(in_bench) == len(known) else None,
        "missing_tasks": [t for t in known if t not in task_scores],
        "unscored_tasks": sorted(t for t in task_scores if t not in known),
        "qa_without_em": sorted(set(qa_without_em)),
        "categories_partial": cat_partial,
        "overall_partial": sum(in_bench) / len(in_bench) if in_bench else None,
    }
