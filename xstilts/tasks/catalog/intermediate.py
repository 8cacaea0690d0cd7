"""English intermediate tasks of the paper (Phang et al. 2020, Table 1).

Paths are relative to the data folder; a tuple lists alternative layouts
(the first file that exists wins, and ``.gz`` is tried after each).
"""

from ...io import NLI_LABELS
from ..spec import HubSource, MixtureSpec, TaskSpec

SPECS: list[TaskSpec | MixtureSpec] = []  # registered in this order by xstilts.tasks.registry

NLI = tuple(NLI_LABELS)
NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis"}
PARQUET_EXPORT = "refs/convert/parquet"
TRAIN_DEV = {"train": "train", "dev": "validation"}  # hub copies without a (labelled) test split

# Public hub copies (Parquet; ``datasets`` 4.x). Tasks absent here have none: CCGbank is LDC-licensed.
# SocialIQA's and Cosmos QA's main branches still hold loading scripts: read the hub's Parquet export.
HUB = {
    "mnli": HubSource("nyu-mll/multi_nli", splits={"train": "train", "dev": "validation_matched"},
                      columns=NLI_COLUMNS),
    "snli": HubSource("stanfordnlp/snli", columns=NLI_COLUMNS),
    **{f"anli_r{r}": HubSource("facebook/anli", splits={"train": f"train_r{r}", "dev": f"dev_r{r}", "test": f"test_r{r}"},
                               columns=NLI_COLUMNS) for r in (1, 2, 3)},
    "qqp": HubSource("nyu-mll/glue", "qqp", columns={"text_a": "question1", "text_b": "question2"},
                     values={"label": {"not_duplicate": "0", "duplicate": "1"}}),
    "squad": HubSource("rajpurkar/squad", splits=TRAIN_DEV),
    "squad_v2": HubSource("rajpurkar/squad_v2", splits=TRAIN_DEV),
    "hellaswag": HubSource("Rowan/hellaswag", columns={"context": "{activity_label}: {ctx}", "choices": "endings"},
                           verified=True),
    "cosmosqa": HubSource("allenai/cosmos_qa", columns={"choices": ("answer0", "answer1", "answer2", "answer3")},
                          revision=PARQUET_EXPORT),
    "commonsenseqa": HubSource("tau/commonsense_qa", columns={"choices": "choices.text",
                                                              "label": "answerKey"},
                               values={"label": {k: i for i, k in enumerate("ABCDE")}}),
    "siqa": HubSource("allenai/social_i_qa", splits=TRAIN_DEV, columns={"choices": ("answerA", "answerB", "answerC")},
                      values={"label": {"1": 0, "2": 1, "3": 2}}, revision=PARQUET_EXPORT),
}

for name, fmt, files in [
    ("mnli", "mnli", {"train": ("mnli/train.jsonl", "MNLI/multinli_1.0_train.jsonl"),
                      "dev": ("mnli/dev_matched.jsonl", "MNLI/multinli_1.0_dev_matched.jsonl")}),
    ("snli", "snli", {"train": ("snli/train.jsonl", "snli_1.0/snli_1.0_train.jsonl"),
                      "dev": ("snli/dev.jsonl", "snli_1.0/snli_1.0_dev.jsonl")}),
    *[(f"anli_r{r}", "anli", {"train": (f"anli/R{r}/train.jsonl",), "dev": (f"anli/R{r}/dev.jsonl",)}) for r in (1, 2, 3)],
]:
    SPECS.append(TaskSpec(name=name, family="classification", files=files, format=fmt, labels=NLI, head="nli",
                      hub=HUB.get(name),
                      description="English NLI; shares the 'nli' head with the other NLI tasks"))

SPECS.append(MixtureSpec(name="anli_plus", tasks=("snli", "mnli", "anli_r1", "anli_r2", "anli_r3"), rule="proportional"))

SPECS.append(TaskSpec(name="qqp", family="classification", format="qqp", labels=("0", "1"), hub=HUB["qqp"],
                  files={"train": ("qqp/train.tsv", "QQP/train.tsv"), "dev": ("qqp/dev.tsv", "QQP/dev.tsv")},
                  description="Quora Question Pairs: are two questions duplicates?"))

SPECS.append(TaskSpec(name="squad", family="span_qa", format="squad", metrics=("f1", "exact_match"),
                  files={"train": ("squad/train-v1.1.json",), "dev": ("squad/dev-v1.1.json",)},
                  hub=HUB["squad"], description="SQuAD v1.1 extractive QA"))
SPECS.append(TaskSpec(name="squad_v2", family="span_qa", format="squad", metrics=("f1", "exact"),
                  options={"version_2": True}, hub=HUB["squad_v2"],
                  files={"train": ("squad/train-v2.0.json",), "dev": ("squad/dev-v2.0.json",)},
                  description="SQuAD v2.0: extractive QA with unanswerable questions"))

for name, fmt, files, desc in [
    ("hellaswag", "hellaswag", {"train": ("hellaswag/hellaswag_train.jsonl",), "dev": ("hellaswag/hellaswag_val.jsonl",)},
     "HellaSwag: pick the plausible continuation (4 endings)"),
    ("cosmosqa", "cosmosqa", {"train": ("cosmosqa/train.csv", "cosmosqa/train.jsonl"), "dev": ("cosmosqa/valid.csv", "cosmosqa/valid.jsonl")},
     "Cosmos QA: commonsense reading comprehension (4 answers)"),
    ("commonsenseqa", "commonsenseqa", {"train": ("commonsenseqa/train_rand_split.jsonl",), "dev": ("commonsenseqa/dev_rand_split.jsonl",)},
     "CommonsenseQA (5 answers)"),
    ("siqa", "siqa", {"train": ("siqa/train.jsonl",), "dev": ("siqa/dev.jsonl",), "test": ("siqa/v1.4/socialIQa_v1.4_tst.jsonl",)},
     "SocialIQA: social commonsense (3 answers)"),
]:
    SPECS.append(TaskSpec(name=name, family="multiple_choice", format=fmt, files=files, description=desc, hub=HUB[name]))

SPECS.append(TaskSpec(name="ccg", family="tagging", format="ccg", metrics=("accuracy",),
                  files={"train": ("ccg/train.tsv", "ccg/ccg.train"), "dev": ("ccg/dev.tsv", "ccg/ccg.dev")},
                  description="CCG supertagging (CCGbank); the supertag set is read from the training data"))
