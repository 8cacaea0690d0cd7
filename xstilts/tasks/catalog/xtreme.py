"""XTREME targets (Hu et al. 2020) in the google-research/xtreme download layout.

Each target names its English training task (``train_task``) and every
language it is evaluated in, once. XTREME-R additions are in ``xtreme_r.py``.
"""

from ...readers import NLI_LABELS, PANX_TAGS, UPOS_TAGS
from ..registry import register
from ..spec import TaskSpec

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


def pair_files(task):
    return {s: (f"{task}/{s}-{{lang}}.tsv",) for s in ("train", "dev", "test")}


register(TaskSpec(name="xnli", family="classification", languages=tuple(XNLI_LANGS), format="xnli",
                  labels=tuple(NLI_LABELS), head="nli", files=pair_files("xnli"), hub=("xnli", "{lang}"),
                  description="XNLI: NLI in 15 languages; English train = MNLI (XTREME's xnli/train-en.tsv)"))
register(TaskSpec(name="pawsx", family="classification", languages=tuple(PAWSX_LANGS), format="pawsx",
                  labels=("0", "1"), files=pair_files("pawsx"), hub=("paws-x", "{lang}"),
                  description="PAWS-X: paraphrase identification in 7 languages"))
register(TaskSpec(name="udpos", family="tagging", languages=tuple(UDPOS_LANGS), format="udpos", labels=tuple(UPOS_TAGS),
                  metrics=("f1", "accuracy"), files=pair_files("udpos"),
                  description="UD-POS (UD v2.5, treebanks merged per language); XTREME reports seqeval F1"))
register(TaskSpec(name="panx", family="tagging", languages=tuple(PANX_LANGS), format="panx", labels=tuple(PANX_TAGS),
                  metrics=("f1",), options={"scheme": "iob2"}, files=pair_files("panx"),
                  description="PAN-X / WikiANN NER, span F1 (seqeval)"))
register(TaskSpec(name="xquad", family="span_qa", languages=tuple(XQUAD_LANGS), format="xquad", train_task="squad",
                  metrics=("f1", "exact_match"), files={"test": ("xquad/xquad.{lang}.json",)},
                  description="XQuAD: SQuAD v1.1 dev translated into 11 languages; trained on SQuAD v1.1"))
register(TaskSpec(name="mlqa", family="span_qa", languages=tuple(MLQA_LANGS), format="mlqa", train_task="squad",
                  metrics=("f1", "exact_match"), options={"mlqa_normalisation": True},
                  files={"dev": ("mlqa/dev/dev-context-{lang}-question-{lang}.json",
                                 "mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json"),
                         "test": ("mlqa/test/test-context-{lang}-question-{lang}.json",
                                  "mlqa/MLQA_V1/test/test-context-{lang}-question-{lang}.json")},
                  description="MLQA: extractive QA, language-aware normalisation; trained on SQuAD v1.1"))
register(TaskSpec(name="tydiqa", family="span_qa", languages=tuple(TYDIQA_LANGS), format="tydiqa",
                  metrics=("f1", "exact_match"), eval_split="dev",
                  files={"train": ("tydiqa/train/tydiqa.goldp.{lang}.train.json",
                                   "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json"),
                         "dev": ("tydiqa/dev/tydiqa.goldp.{lang}.dev.json",
                                 "tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json")},
                  description="TyDiQA-GoldP; trained on its English train split, evaluated on dev (test is hidden)"))
register(TaskSpec(name="bucc2018", family="retrieval", languages=tuple(BUCC_LANGS), format="bucc", metrics=("f1",),
                  options={"kind": "bucc"}, eval_split="test",
                  files={f"{s}{part}": (f"bucc2018/{{lang}}-en.{s}.{ext}",) for s in ("dev", "test")
                         for part, ext in (("", "{lang}"), ("_target", "en"), ("_gold", "gold"))},
                  description="BUCC 2018 bitext mining; ratio-margin (k=4), threshold tuned for F1 on dev"))
register(TaskSpec(name="tatoeba", family="retrieval", languages=tuple(TATOEBA_LANGS), format="tatoeba",
                  options={"kind": "aligned"}, files={"test": ("tatoeba/tatoeba.{lang3}-eng.{lang3}",),
                                                     "test_target": ("tatoeba/tatoeba.{lang3}-eng.eng",)},
                  description="Tatoeba: for each English sentence the nearest xx sentence by cosine (as XTREME), accuracy"))
