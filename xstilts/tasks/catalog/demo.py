"""The offline CLDR demo tasks of ``xstilts quickstart`` (data written by :func:`xstilts.demo.build`).

Relative file paths resolve against the run's ``data_dir`` (the folder
``xstilts.demo.build`` wrote). They are a demonstration, not a benchmark.
"""

from ...demo import CATEGORIES, DEFAULT_LANGUAGES, SAME_CATEGORY_TASK, IS_A_TASK, PAIR_LABELS, TARGET_TASK, YES_NO
from ..spec import TaskSpec

SPECS: list[TaskSpec] = []  # registered in this order by xstilts.tasks.registry

SPECS.append(TaskSpec(
    name=SAME_CATEGORY_TASK,
    family="classification",
    languages=("en",),
    files={"train": f"{SAME_CATEGORY_TASK}/train-{{lang}}.jsonl"},
    labels=PAIR_LABELS,
    description="demo intermediate task: do two English CLDR names denote the same kind of thing? (same/different)",
))

SPECS.append(TaskSpec(
    name=IS_A_TASK,
    family="classification",
    languages=("en",),
    files={"train": f"{IS_A_TASK}/train-{{lang}}.jsonl"},
    labels=YES_NO,
    description="demo intermediate task: is this English CLDR name a country / language / currency / city / "
                "unit / writing system / time zone / world region? (text pair: name, kind; yes/no)",
))

SPECS.append(TaskSpec(
    name=TARGET_TASK,
    family="classification",
    languages=("en",) + DEFAULT_LANGUAGES,
    files={"train": f"{TARGET_TASK}/train-{{lang}}.jsonl", "dev": f"{TARGET_TASK}/dev-{{lang}}.jsonl",
           "test": f"{TARGET_TASK}/test-{{lang}}.jsonl"},
    labels=CATEGORIES,
    description="demo target task: is a CLDR name a country, language, currency, city or unit? "
                "Few-shot English training, zero-shot test in other languages",
))
