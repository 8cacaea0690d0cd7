"""XTREME-R additions (Ruder et al. 2021) and its wider language lists."""

from dataclasses import replace

from ...io import COPA_QUESTIONS, PANX_TAGS, UPOS_TAGS
from ..spec import HubSource, TaskSpec
from .xtreme import HUB as XTREME_HUB
from .xtreme import PANX_LANGS, UDPOS_LANGS

SPECS: list[TaskSpec] = []  # registered in this order by xstilts.tasks.registry

XCOPA_LANGS = "et ht id it qu sw ta th tr vi zh".split()
LAREQA_LANGS = "ar de el en es hi ru th tr vi zh".split()
MEWSLI_LANGS = "ar de en es fa ja pl ro ta tr uk".split()
UDPOS_R_LANGS = sorted(set(UDPOS_LANGS) | set("lt pl ro uk wo".split()))  # 38
PANX_R_LANGS = sorted(set(PANX_LANGS) | set("az gu lt pa pl qu ro uk".split()))  # 48
# Public hub copies (Parquet; ``datasets`` 4.x). LAReQA's XQuAD-R and Mewsli-X have none in the layout they are
# scored in (sentence-split answers; the entity candidate set). UD-POS's extra XTREME-R languages (lt, pl, ro, uk,
# wo) are not in google/xtreme; PAN-X's 48 languages all are in WikiANN (the same Rahimi et al. splits).
COPA_HUB = dict(columns={"context": "premise", "choices": ("choice1", "choice2")}, values={"question": COPA_QUESTIONS})
HUB = {
    "copa": HubSource("aps/super_glue", "copa", splits={"train": "train", "dev": "validation"}, **COPA_HUB),
    "xcopa": HubSource("cambridgeltl/xcopa", "{lang}", splits={"dev": "validation", "test": "test"},
                       revision="refs/convert/parquet", **COPA_HUB),  # the hub's Parquet export of each language
    "udpos_r": replace(XTREME_HUB["udpos"], splits={"dev": "validation", "test": "test"}),
    "panx_r": HubSource("unimelb-nlp/wikiann", "{lang}", splits={"dev": "validation", "test": "test"},
                        columns={"tags": "ner_tags"}),
}

SPECS.append(TaskSpec(name="copa", hub=HUB["copa"], family="multiple_choice", format="copa",
                  files={"train": ("xcopa/copa_en/train-en.jsonl", "copa/train.jsonl"),
                         "dev": ("xcopa/copa_en/val-en.jsonl", "copa/val.jsonl")},
                  description="English COPA (XCOPA's training set)"))
SPECS.append(TaskSpec(name="xcopa", hub=HUB["xcopa"], family="multiple_choice", languages=tuple(XCOPA_LANGS), format="xcopa", train_task="copa",
                  files={"dev": ("xcopa/data/{lang}/val.{lang}.jsonl",), "test": ("xcopa/data/{lang}/test.{lang}.jsonl",)},
                  description="XCOPA: causal commonsense in 11 languages; trained on COPA (XTREME-R adds SIQA first)"))
SPECS.append(TaskSpec(name="lareqa", family="retrieval", languages=tuple(LAREQA_LANGS), format="xquad_r", metrics=("map@20",),
                  options={"kind": "lareqa"}, files={"test": ("lareqa/xquad-r/{lang}.json",)},
                  description="LAReQA XQuAD-R: language-agnostic answer-sentence retrieval over all languages, mAP@20"))
SPECS.append(TaskSpec(name="mewsli_x", family="retrieval", languages=tuple(MEWSLI_LANGS), format="mewsli_x", metrics=("map@20",),
                  options={"kind": "mewsli"},
                  files={"test": ("mewsli-x/wikinews_mentions-test.jsonl",),
                         "candidates": ("mewsli-x/candidate_set_entities.jsonl",)},
                  description="Mewsli-X: entity retrieval for mentions in 11 languages, mAP@20"))
SPECS.append(TaskSpec(name="udpos_r", hub=HUB["udpos_r"], family="tagging", languages=tuple(UDPOS_R_LANGS), format="udpos", train_task="udpos",
                  labels=tuple(UPOS_TAGS), metrics=("f1", "accuracy"),
                  files={s: (f"udpos/{s}-{{lang}}.tsv",) for s in ("dev", "test")},
                  description="UD-POS with XTREME-R's 38 languages"))
SPECS.append(TaskSpec(name="panx_r", hub=HUB["panx_r"], family="tagging", languages=tuple(PANX_R_LANGS), format="panx", train_task="panx",
                  labels=tuple(PANX_TAGS), metrics=("f1",), options={"scheme": "iob2"},
                  files={s: (f"panx/{s}-{{lang}}.tsv",) for s in ("dev", "test")},
                  description="PAN-X NER with XTREME-R's 48 languages"))
