"""XTREME targets (Hu et al. 2020) in the google-research/xtreme download layout.

Each target names its English training task (``train_task``) and every
language it is evaluated in, once. XTREME-R additions are in ``xtreme_r.py``.
"""

from dataclasses import replace

from ...io import NLI_LABELS, PANX_TAGS, UPOS_TAGS
from ..spec import HubSource, TaskSpec

SPECS: list[TaskSpec] = []  # registered in this order by xstilts.tasks.registry

XNLI_LANGS = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()
PAWSX_LANGS = "de en es fr ja ko zh".split()
UDPOS_LANGS = ("af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr ur vi yo zh").split()
PANX_LANGS = ("af ar bg bn de el en es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr ms my nl pt ru sw ta te th "
              "tl tr ur vi yo zh").split()
XQUAD_LANGS = "ar de el en es hi ro ru th tr vi zh".split()
MLQA_LANGS = "ar de en es hi vi zh".split()
TYDIQA_LANGS = "ar bn en fi id ko ru sw te".split()
BUCC_LANGS = "de fr ru zh".split()
TATOEBA_LANGS = ("af ar bg bn de el es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr nl pt ru sw ta te th tl tr ur "
                 "vi zh").split()
# LASER's Tatoeba files use ISO 639-3 codes.
TATOEBA_CODES = dict(af="afr", ar="ara", bg="bul", bn="ben", de="deu", el="ell", es="spa", et="est", eu="eus", fa="pes",
                     fi="fin", fr="fra", he="heb", hi="hin", hu="hun", id="ind", it="ita", ja="jpn", jv="jav", ka="kat",
                     kk="kaz", ko="kor", ml="mal", mr="mar", nl="nld", pt="por", ru="rus", sw="swh", ta="tam", te="tel",
                     th="tha", tl="tgl", tr="tur", ur="urd", vi="vie", zh="cmn", az="aze", lt="lit", pl="pol", uk="ukr",
                     ro="ron", wo="wol", yo="yor")

# google/xtreme's udpos configs are named by language (the treebanks XTREME merged, UD v2.5).
UD_NAMES = dict(af="Afrikaans", ar="Arabic", bg="Bulgarian", de="German", el="Greek", en="English", es="Spanish",
                et="Estonian", eu="Basque", fa="Persian", fi="Finnish", fr="French", he="Hebrew", hi="Hindi",
                hu="Hungarian", id="Indonesian", it="Italian", ja="Japanese", kk="Kazakh", ko="Korean", mr="Marathi",
                nl="Dutch", pt="Portuguese", ru="Russian", ta="Tamil", te="Telugu", th="Thai", tl="Tagalog",
                tr="Turkish", ur="Urdu", vi="Vietnamese", yo="Yoruba", zh="Chinese")
TYDIQA_NAMES = dict(ar="arabic", bn="bengali", en="english", fi="finnish", id="indonesian", ko="korean", ru="russian",
                    sw="swahili", te="telugu")

# Public hub copies (Parquet; ``datasets`` 4.x). google/xtreme holds XTREME's own files; its XNLI config has no
# train split, so XNLI comes from facebook/xnli (whose English train is MNLI, as XTREME's). BUCC has none in the
# mining layout (the hub copies hold only the gold pairs, not the corpora mined from).
HUB = {
    "xnli": HubSource("facebook/xnli", "{lang}", columns={"text_a": "premise", "text_b": "hypothesis"}, verified=True),
    "pawsx": HubSource("google-research-datasets/paws-x", "{lang}", columns={"text_a": "sentence1", "text_b": "sentence2"}),
    "udpos": HubSource("google/xtreme", "udpos.{config}", configs=UD_NAMES, columns={"tags": "pos_tags"}, verified=True),
    "panx": HubSource("google/xtreme", "PAN-X.{lang}", columns={"tags": "ner_tags"}, verified=True),
    "xquad": HubSource("google/xtreme", "XQuAD.{lang}", splits={"test": "validation"}, verified=True),
    "mlqa": HubSource("google/xtreme", "MLQA.{lang}.{lang}", splits={"dev": "validation", "test": "test"}, verified=True),
    "tydiqa": HubSource("google/xtreme", "tydiqa", splits={"train": "train", "dev": "validation"},
                        row_filter=("id", {k: v + "-" for k, v in TYDIQA_NAMES.items()}), verified=True),
    "tatoeba": HubSource("google/xtreme", "tatoeba.{lang3}", splits={"test": "validation"},
                         columns={"source": "source_sentence", "target": "target_sentence"}, verified=True),
}


def pair_files(task):
    return {s: (f"{task}/{s}-{{lang}}.tsv",) for s in ("train", "dev", "test")}


SPECS.append(TaskSpec(name="xnli", hub=HUB["xnli"], family="classification", languages=tuple(XNLI_LANGS), format="xnli",
                  labels=tuple(NLI_LABELS), head="nli", files=pair_files("xnli"),
                  description="XNLI: NLI in 15 languages; English train = MNLI (XTREME's xnli/train-en.tsv)"))
SPECS.append(TaskSpec(name="pawsx", hub=HUB["pawsx"], family="classification", languages=tuple(PAWSX_LANGS), format="pawsx",
                  labels=("0", "1"), files=pair_files("pawsx"),
                  description="PAWS-X: paraphrase identification in 7 languages"))
SPECS.append(TaskSpec(name="udpos", hub=HUB["udpos"], family="tagging", languages=tuple(UDPOS_LANGS), format="udpos", labels=tuple(UPOS_TAGS),
                  metrics=("f1", "accuracy"), files=pair_files("udpos"),
                  description="UD-POS (UD v2.5, treebanks merged per language); XTREME reports seqeval F1"))
SPECS.append(TaskSpec(name="panx", hub=HUB["panx"], family="tagging", languages=tuple(PANX_LANGS), format="panx", labels=tuple(PANX_TAGS),
                  metrics=("f1",), options={"scheme": "iob2"}, files=pair_files("panx"),
                  description="PAN-X / WikiANN NER, span F1 (seqeval)"))
SPECS.append(TaskSpec(name="xquad", hub=HUB["xquad"], family="span_qa", languages=tuple(XQUAD_LANGS), format="xquad", train_task="squad",
                  metrics=("f1", "exact_match"), files={"test": ("xquad/xquad.{lang}.json",)},
                  description="XQuAD: SQuAD v1.1 dev translated into 11 languages; trained on SQuAD v1.1"))
SPECS.append(TaskSpec(name="mlqa", hub=HUB["mlqa"], family="span_qa", languages=tuple(MLQA_LANGS), format="mlqa", train_task="squad",
                  metrics=("f1", "exact_match"), options={"mlqa_normalisation": True},
                  files={"dev": ("mlqa/dev/dev-context-{lang}-question-{lang}.json",
                                 "mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json"),
                         "test": ("mlqa/test/test-context-{lang}-question-{lang}.json",
                                  "mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json")},
                  description="MLQA: extractive QA, language-aware normalisation; trained on SQuAD v1.1"))
SPECS.append(TaskSpec(name="tydiqa", hub=HUB["tydiqa"], family="span_qa", languages=tuple(TYDIQA_LANGS), format="tydiqa",
                  metrics=("f1", "exact_match"), eval_split="dev",
                  files={"train": ("tydiqa/train/tydiqa.goldp.{lang}.train.json",
                                   "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json"),
                         "dev": ("tydiqa/dev/tydiqa.goldp.{lang}.dev.json",
                                 "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json")},
                  description="TyDiQA-GoldP; trained on its English train split, evaluated on dev (test is hidden)"))
SPECS.append(TaskSpec(name="bucc2018", family="retrieval", languages=tuple(BUCC_LANGS), format="bucc", metrics=("f1",),
                  options={"kind": "bucc"}, eval_split="test",
                  files={f"{s}{part}": (f"bucc2018/{{lang}}-en.{s}.{ext}",) for s in ("dev", "test")
                         for part, ext in (("", "{lang}"), ("_target", "en"), ("_gold", "gold"))},
                  description="BUCC 2018 bitext mining; ratio-margin (k=4), threshold tuned for F1 on dev"))
SPECS.append(TaskSpec(name="tatoeba", hub=HUB["tatoeba"], family="retrieval", languages=tuple(TATOEBA_LANGS), format="tatoeba",
                  options={"kind": "aligned"}, files={"test": ("tatoeba/tatoeba.{lang3}-eng.{lang3}",),
                                                     "test_target": ("tatoeba/tatoeba.{lang3}-eng.eng",)},
                  description="Tatoeba: for each English sentence the nearest xx sentence by cosine (as XTREME), accuracy"))

# XTREME scores UD-POS on the UD treebanks' test sets (XTREME's own test files carry no labels): one task per
# treebank family, read from the CoNLL-U release files `ud/<lang>_<treebank>-ud-test.conllu`, trained like udpos.
UD_TREEBANKS = {
    "ewt": ("en",),
    "gsd": tuple("de es fr id ja ko pt ru zh".split()),
    "tdt": ("fi",),
    "imst": ("tr",),
    "pud": tuple("ar cs de en es fi fr hi id is it ja ko pl pt ru sv th tr zh".split()),  # parallel, 1000 sentences
}
_udpos = next(s for s in SPECS if s.name == "udpos")
for _tb, _langs in UD_TREEBANKS.items():
    SPECS.append(replace(_udpos, name=f"udpos_{_tb}", languages=_langs, format="conllu", train_task="udpos", hub=None,
                     files={s: (f"ud/{{lang}}_{_tb}-ud-{s}.conllu",) for s in (("dev", "test") if _tb == "ewt" else ("test",))},
                     eval_split="test",
                     description=f"UD-POS on the UD {_tb.upper()} treebank test sets (CoNLL-U UPOS); trained on udpos"))
