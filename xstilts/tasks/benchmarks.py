"""Benchmark groups as data: XTREME and XTREME-R, their categories, tasks and catalogue tasks.

Plain data, importing nothing: :func:`xstilts.metrics.xtreme_score` reads it, and a test checks that
every catalogue task named here is registered.

Task names in ``categories`` / ``tasks`` are the official google-research/xtreme ``evaluate.py`` names
(``XTREME_GROUP2TASK`` / ``XTREME_R_GROUP2TASK`` / ``*_TASK2LANGS`` keys); they are the keys
``xtreme_score`` reports. ``catalogue`` maps each official name to the catalogue tasks that stand for
it, the benchmark's own first: under XTREME-R the catalogue's ``udpos_r`` / ``panx_r`` (XTREME-R's
language lists) stand for udpos / panx and win over the XTREME tasks when both are given. LAReQA is an
XTREME-R task but belongs to no official group.
"""

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
