"""xstilts translate: language codes, mark-and-translate span remapping, and the plumbing with tiny MT models.

The MT models are random and tiny (Marian, M2M100, NLLB), built in-process
with SentencePiece / BPE vocabularies trained on a few sentences: their
output is noise, so they test loading, language codes, batching, files,
summaries and resume; the span remapping is tested with fake translators.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml

from xstilts import translate as T
from xstilts.cli import main
from xstilts.data import load_examples
from xstilts.errors import ConfigError, XstiltsError
from xstilts.tasks import TaskSpec

CORPUS = [
    "The cat sat on the mat.", "Alice wrote the book in 1990.", "It was a big success.",
    "Paris is the capital of France.", "The Eiffel Tower is in Paris.", "Who wrote the book?",
    "die Katze sitzt auf der Matte", "le chat est sur le tapis", "a dog runs in the park [quickly]",
]


# ---------------------------------------------------------------- tiny models


def _spm(corpus, vocab_size, **ids) -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus * 3), model_writer=buf, vocab_size=vocab_size,
                                   model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
                                   minloglevel=2, **ids)
    return buf.getvalue()


def _pieces(proto: bytes) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=proto)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def _seq2seq_kwargs(**kw):
    return dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128, **kw)


def build_tiny_marian(out: Path, targets: tuple[str, ...] = ()) -> Path:
    """A one-pair model, or with ``targets`` a multi-target one (``>>deu<<`` tokens in its vocabulary)."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out.mkdir(parents=True, exist_ok=True)
    proto = _spm(CORPUS, 80, bos_id=-1, pad_id=0, eos_id=1, unk_id=2)
    for name in ("source.spm", "target.spm"):
        (out / name).write_bytes(proto)
    vocab = {p: i for i, p in enumerate(_pieces(proto))}
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{p: i for p, i in vocab.items() if i > 2}}
    for t in targets:
        vocab[f">>{t}<<"] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tok = MarianTokenizer(str(out / "source.spm"), str(out / "target.spm"), str(out / "vocab.json"))
    torch.manual_seed(0)
    MarianMTModel(MarianConfig(vocab_size=len(vocab), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                               forced_eos_token_id=1, **_seq2seq_kwargs())).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _m2m_config(vocab_size):
    from transformers import M2M100Config

    return M2M100Config(vocab_size=vocab_size, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        decoder_start_token_id=2, **_seq2seq_kwargs())


def build_tiny_m2m(out: Path) -> Path:
    import torch
    from transformers import M2M100ForConditionalGeneration, M2M100Tokenizer

    out.mkdir(parents=True, exist_ok=True)
    proto = _spm(CORPUS, 80, bos_id=0, pad_id=1, eos_id=2, unk_id=3)
    (out / "sentencepiece.bpe.model").write_bytes(proto)
    (out / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(_pieces(proto))}), encoding="utf-8")
    tok = M2M100Tokenizer(str(out / "vocab.json"), str(out / "sentencepiece.bpe.model"))
    torch.manual_seed(0)
    size = max(tok.lang_code_to_id.values()) + 1 + tok.num_madeup_words
    M2M100ForConditionalGeneration(_m2m_config(size)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_nllb(out: Path) -> Path:
    """NLLB = an M2M100 model with an NLLB tokenizer (here a character BPE vocabulary)."""
    import torch
    from transformers import M2M100ForConditionalGeneration, NllbTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "▁": 4}
    for ch in sorted(set("".join(CORPUS)) - {" "}):
        vocab.setdefault(ch, len(vocab))
    tok = NllbTokenizer(vocab=vocab, merges=[])
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(_m2m_config(max(tok.get_vocab().values()) + 1)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mt")
    return {"marian": build_tiny_marian(root / "marian"), "marian_mul": build_tiny_marian(root / "mul", ("deu", "fra")),
            "m2m": build_tiny_m2m(root / "m2m"),
            "nllb": build_tiny_nllb(root / "nllb")}


# ---------------------------------------------------------------- toy data

CTX1 = "The cat sat on the mat. Alice wrote the book in 1990. It was a big success."
CTX2 = "Paris is the capital of France. The Eiffel Tower is in Paris."


def qa(i, question, ctx, answer, start=None):
    answers = {"text": [], "answer_start": []} if answer is None else \
        {"text": [answer], "answer_start": [ctx.index(answer) if start is None else start]}
    return {"id": f"q{i}", "question": question, "context": ctx, "answers": answers}


QA = [
    qa(0, "Who wrote the book?", CTX1, "Alice"),
    qa(1, "When was it written?", CTX1, "1990"),
    qa(2, "What sat on the mat?", CTX1, "The cat"),
    qa(3, "What was it?", CTX1, "a big success"),
    qa(4, "What is in Paris?", CTX2, "Eiffel Tower"),
    qa(5, "Is there a moon?", CTX2, None),
]

PAIRS = [{"id": f"p{i}", "text_a": a, "text_b": b, "label": lab} for i, (a, b, lab) in enumerate([
    ("The cat sat on the mat.", "Die Katze sitzt.", "entailment"),
    ("Alice wrote the book in 1990.", "It was a big success.", "neutral"),
    ("Paris is the capital of France.", "The Eiffel Tower is in Paris.", "contradiction"),
    ("Who wrote the book?", "Alice wrote the book in 1990.", "entailment"),
    ("a dog runs in the park", "The cat sat on the mat.", "neutral"),
])] + [{"id": "p5", "text_a": "It was a big success.", "text_b": None, "label": "neutral"}]

MC = [{"id": "m0", "context": "The cat sat on the mat.", "question": "Where did the cat sit?",
       "choices": ["on the mat", "in Paris", "in 1990"], "label": 0}]

NLI = ("entailment", "neutral", "contradiction")


def _write(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture()
def data(tmp_path) -> Path:
    _write(tmp_path / "data" / "toyqa" / "train-en.jsonl", QA)
    _write(tmp_path / "data" / "toypair" / "train-en.jsonl", PAIRS)
    _write(tmp_path / "data" / "toymc" / "train-en.jsonl", MC)
    return tmp_path / "data"


QA_SPEC = TaskSpec(name="toyqa", family="span_qa", files={"train": "toyqa/train-{lang}.jsonl"},
                   metrics=("f1", "exact_match"))
PAIR_SPEC = TaskSpec(name="toypair", family="classification", files={"train": "toypair/train-{lang}.jsonl"},
                     labels=NLI, head="nli")
MC_SPEC = TaskSpec(name="toymc", family="multiple_choice", files={"train": "toymc/train-{lang}.jsonl"})


# ---------------------------------------------------------------- fake translators


class Recorder:
    """Wraps a fake translate function; records calls (to check de-duplication)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return [self.fn(t) for t in texts]


def reverse_words(text: str) -> str:
    """Word order reversed, markers kept as tokens and swapped so they still open and close."""
    toks = re.findall(r"\[|\]|[^\s\[\]]+", text)[::-1]
    return " ".join({"[": "]", "]": "["}.get(t, t) for t in toks)


def no_markers(text: str) -> str:
    return text.replace("[", "").replace("]", "")


def check_offsets(rows):
    for r in rows:
        for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"]):
            assert r["context"][s : s + len(t)] == t, r


# ---------------------------------------------------------------- language codes (no model)


def test_nllb_codes():
    assert T.nllb_code("de") == "deu_Latn"
    assert T.nllb_code("zh") == "zho_Hans" and T.nllb_code("zh-TW") == "zho_Hant"
    assert T.nllb_code("pt_BR") == "por_Latn" and T.nllb_code("iw") == "heb_Hebr"
    assert T.nllb_code("sw") == "swh_Latn" and T.nllb_code("fa") == "pes_Arab" and T.nllb_code("ms") == "zsm_Latn"
    assert T.nllb_code("fra_Latn") == "fra_Latn"  # codes pass through
    from xstilts.tasks.catalog.xtreme import TATOEBA_CODES

    for lang in TATOEBA_CODES:  # every XTREME language has a code
        assert re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", T.nllb_code(lang))
    with pytest.raises(ConfigError, match="--to xx=xxx_Latn"):
        T.nllb_code("xx")


def test_m2m_codes_and_targets():
    assert T.m2m_code("de") == "de" and T.m2m_code("zh-TW") == "zh" and T.m2m_code("iw") == "he"
    assert T.m2m_code("fil") == "tl" and T.m2m_code("pt_BR") == "pt"
    with pytest.raises(ConfigError, match="NLLB code"):
        T.m2m_code("deu_Latn")
    assert T.parse_target("de") == ("de", None)
    assert T.parse_target(" de = deu_Latn ") == ("de", "deu_Latn")
    with pytest.raises(ConfigError):
        T.parse_target("=deu_Latn")


def test_detect_family():
    assert T.detect_family("m2m_100", "NllbTokenizerFast") == "nllb"
    assert T.detect_family("m2m_100", "NllbTokenizer") == "nllb"
    assert T.detect_family("m2m_100", "M2M100Tokenizer") == "m2m100"
    assert T.detect_family("marian", "MarianTokenizer") == "marian"
    assert T.detect_family("mbart", "MBart50TokenizerFast") == "mbart"
    assert T.detect_family("t5", "T5TokenizerFast") == "generic"


def test_marian_tokens_and_pairs():
    supported = [">>deu<<", ">>fra<<", ">>cmn_Hans<<", ">>es<<"]
    assert T.marian_target_token("de", supported) == ">>deu<<"
    assert T.marian_target_token("es", supported) == ">>es<<"
    assert T.marian_target_token("zh", supported) == ">>cmn_Hans<<"
    assert T.marian_target_token("fr", supported, code="fra") == ">>fra<<"
    assert T.marian_target_token("de", []) is None  # one-pair model
    with pytest.raises(ConfigError, match="no target token"):
        T.marian_target_token("ja", supported)
    T.check_marian_pair("Helsinki-NLP/opus-mt-en-de", "en", "de")
    T.check_marian_pair("Helsinki-NLP/opus-mt-en-ROMANCE", "en", "fr")  # multi-target: token decides
    with pytest.raises(ConfigError, match=r"opus-mt-en-\{lang\}"):
        T.check_marian_pair("Helsinki-NLP/opus-mt-en-de", "en", "fr")
    assert T.mbart_code("de", ["en_XX", "de_DE", "fr_XX"]) == "de_DE" and T.mbart_code("fr_XX", ["fr_XX"]) == "fr_XX"


class StubM2M:
    all_special_ids = [0, 1, 2, 3]
    unk_token_id = 3
    lang_code_to_id = {"en": 100, "de": 101, "fr": 102}
    src_lang = None

    def get_lang_id(self, lang):
        return self.lang_code_to_id[lang]


class StubNllb:
    all_special_ids = [0, 1, 2, 3]
    unk_token_id = 3
    codes = {"eng_Latn": 200, "deu_Latn": 201, "zho_Hant": 202}
    src_lang = None

    def convert_tokens_to_ids(self, tok):
        return self.codes.get(tok, self.unk_token_id)


def test_language_setup_stubs():
    tok = StubM2M()
    s = T.language_setup("m2m100", tok, "en", "de")
    assert (s.src_code, s.tgt_code, s.forced_bos_token_id, tok.src_lang) == ("en", "de", 101, "en")
    assert {100, 101, 102} <= s.strip_ids
    with pytest.raises(ConfigError, match="M2M100 has no language 'eu'"):
        T.language_setup("m2m100", tok, "en", "eu")
    tok = StubNllb()
    s = T.language_setup("nllb", tok, "en", "de")
    assert (s.src_code, s.tgt_code, s.forced_bos_token_id, tok.src_lang) == ("eng_Latn", "deu_Latn", 201, "eng_Latn")
    assert T.language_setup("nllb", tok, "en", "zh-TW").forced_bos_token_id == 202
    assert T.language_setup("nllb", tok, "en", "xx", tgt_code="zho_Hant").tgt_code == "zho_Hant"
    with pytest.raises(ConfigError, match="no language code 'fra_Latn'"):
        T.language_setup("nllb", tok, "en", "fr")
    s = T.language_setup("generic", tok, "en", "de")
    assert s.forced_bos_token_id is None and s.prefix == ""


# ---------------------------------------------------------------- sentences and markers (pure)


def test_sentence_spans():
    text = "Mr. Smith went to Washington. He arrived in 1990! Then U.S. troops left.  Was it J. R. R. Tolkien? Yes."
    got = [text[a:b] for a, b in T.sentence_spans(text)]
    assert got == ["Mr. Smith went to Washington.", "He arrived in 1990!", "Then U.S. troops left.",
                   "Was it J. R. R. Tolkien?", "Yes."]
    assert [("猫が座った。犬が走る。")[a:b] for a, b in T.sentence_spans("猫が座った。犬が走る。")] == ["猫が座った。", "犬が走る。"]
    assert T.sentence_spans("  ") == [] and T.sentence_spans("no end") == [(0, 6)]


def test_extract_marked():
    assert T.extract_marked("Der [Hund] läuft", ("[", "]")) == ("Der Hund läuft", 4, "Hund")
    assert T.extract_marked("Der [ Hund ] läuft", ("[", "]")) == ("Der Hund läuft", 4, "Hund")
    assert T.extract_marked("Der[Hund]läuft", ("[", "]")) == ("DerHundläuft", 3, "Hund")
    assert T.extract_marked("Der »Hund« läuft", ("«", "»")) == ("Der Hund läuft", 4, "Hund")  # German quotes
    assert T.extract_marked("【猫】が座った", ("[", "]")) == ("猫が座った", 0, "猫")  # full width
    assert T.extract_marked("Der Hund läuft", ("[", "]")) is None  # lost
    assert T.extract_marked("Der [Hund] [läuft]", ("[", "]")) is None  # ambiguous
    assert T.extract_marked("Der [ ] läuft", ("[", "]")) is None  # empty
    assert T.locate(["cat"], "cat and cat", 8, False) == (8, "cat")
    assert T.locate(["Eiffel Tower."], "the eiffel  tower is", 0, True) == (4, "eiffel  tower")
    assert T.locate(["nope"], "cat", 0, True) is None


# ---------------------------------------------------------------- span remapping with fake translators


@pytest.mark.parametrize("fn", [lambda t: t, str.upper, reverse_words], ids=["identity", "upper", "reverse"])
def test_span_qa_markers_kept(fn):
    rec = Recorder(fn)
    rows, stats = T.translate_span_qa(QA, rec)
    assert stats["mapped"] == {"marker": 5, "unanswerable": 1} and stats["dropped"] == {}
    assert stats["markers_lost"] == 0 and len(rec.calls) == 1  # no fallback needed
    assert len(rec.calls[0]) == len(set(rec.calls[0]))  # de-duplicated
    check_offsets(rows)
    assert [r["id"] for r in rows] == [e["id"] for e in QA]
    if fn is str.upper:
        assert [r["answers"]["text"] for r in rows] == [[e["answers"]["text"][0].upper()] for e in QA[:5]] + [[]]
        assert rows[0]["question"] == "WHO WROTE THE BOOK?"
    if fn is reverse_words:  # answers move; "The cat" comes back as "cat The"
        assert rows[2]["answers"]["text"] == ["cat The"] and rows[3]["answers"]["text"] == ["success big a"]
    if fn(CTX1) == CTX1:
        assert rows[0] == QA[0]  # identity: the example comes back unchanged


def test_span_qa_sentence_segmentation_shares_work():
    rec = Recorder(lambda t: t)
    T.translate_span_qa(QA, rec)
    sent = [t for t in rec.calls[0] if "[" not in t]
    assert "It was a big success." in sent and "Paris is the capital of France." in sent  # translated once each
    marked = [t for t in rec.calls[0] if "[" in t]
    assert marked == ["[Alice] wrote the book in 1990.", "Alice wrote the book in [1990].", "[The cat] sat on the mat.",
                      "It was [a big success].", "The [Eiffel Tower] is in Paris."]
    rec = Recorder(lambda t: t)
    rows, _ = T.translate_span_qa(QA, rec, segment=False)
    assert rows[0] == QA[0] and all(CTX1 in t or CTX2 in t or "[" in t or "?" in t for t in rec.calls[0])


def test_span_qa_fallbacks_and_drop():
    # markers lost, answer translated alike: found exactly
    rows, stats = T.translate_span_qa(QA, Recorder(no_markers))
    assert stats["mapped"] == {"answer_exact": 5, "unanswerable": 1} and stats["markers_lost"] == 5
    check_offsets(rows)
    assert rows[0]["answers"] == QA[0]["answers"]

    # markers lost; short answers come back upper-cased: found case-insensitively
    answers = {e["answers"]["text"][0] for e in QA[:5]}
    rows, stats = T.translate_span_qa(QA, Recorder(lambda t: t.upper() if t in answers else no_markers(t)))
    assert stats["mapped"] == {"answer_exact": 1, "answer_casefold": 4, "unanswerable": 1}  # "1990" has no case
    check_offsets(rows)
    assert rows[4]["answers"]["text"] == ["Eiffel Tower"]  # as written in the context

    # markers lost, answer translation unusable, but the untranslated answer (a name) is there
    rows, stats = T.translate_span_qa(QA, Recorder(lambda t: "zzz" if t in answers else no_markers(t)))
    assert stats["mapped"] == {"source_answer": 5, "unanswerable": 1}
    check_offsets(rows)

    # nothing to find: dropped and counted, never silently
    paraphrase = {"Alice": "she", "1990": "that year"}  # the context loses the answer's words

    def fn(t):
        if t in answers:
            return t
        t = no_markers(t)
        for a, b in paraphrase.items():
            t = t.replace(a, b)
        return t

    rows, stats = T.translate_span_qa(QA, Recorder(fn))
    assert stats["dropped"] == {"answer_not_found": 2} and stats["markers_lost"] == 5
    assert stats["mapped"] == {"answer_exact": 3, "unanswerable": 1}
    assert len(rows) + sum(stats["dropped"].values()) == len(QA)
    assert {r["id"] for r in rows} == {"q2", "q3", "q4", "q5"}


def test_span_qa_edge_cases():
    ctx = "See note [1]: the cat sat. The cat left."
    bad = qa(1, "q?", CTX1, "Alice", start=3)  # offset does not match the text
    multi = {"id": "m", "question": "Who?", "context": CTX1,
             "answers": {"text": ["Alice", "the book", "The cat"], "answer_start": [CTX1.index("Alice"),
                                                                                    CTX1.index("the book"), 0]}}
    rows, stats = T.translate_span_qa([qa(0, "What sat?", ctx, "the cat"), bad, multi],
                                      Recorder(lambda t: t if t == "The cat" else t.replace("The cat", "A dog")))
    assert stats["dropped"] == {"bad_source_span": 1}
    # "[" is in the sentence, so the «» pair marks the answer
    assert rows[0]["answers"] == {"text": ["the cat"], "answer_start": [ctx.index("the cat")]}
    assert rows[1]["answers"]["text"] == ["Alice", "the book"] and stats["extra_answers_dropped"] == 1
    check_offsets(rows)
    rows, stats = T.translate_span_qa([multi], Recorder(str.upper))
    assert rows[0]["answers"] == {"text": ["ALICE", "THE BOOK", "THE CAT"],
                                  "answer_start": multi["answers"]["answer_start"]}
    assert stats["extra_answers_dropped"] == 0
    rows, stats = T.translate_span_qa([qa(0, "Who?", CTX1, "Alice")], Recorder(lambda t: "" if "[" in t else t))
    assert stats["dropped"] == {"answer_not_found": 1}
    rows, stats = T.translate_span_qa([qa(0, "Who?", CTX1, "Alice")], Recorder(lambda t: "" if "?" in t else t))
    assert stats["dropped"] == {"empty_translation": 1}
    # markers drifting far apart are not trusted
    far = Recorder(lambda t: t.replace("[Alice]", "[Alice") + " and much more text follows here in this sentence]"
                   if "[" in t else t)
    rows, stats = T.translate_span_qa([qa(0, "Who?", CTX1, "Alice")], far)
    assert stats["mapped"] == {"answer_exact": 1} and rows[0]["answers"]["text"] == ["Alice"]


def test_other_families_and_rejections():
    rows, stats = T.translate_examples("classification", PAIRS, Recorder(str.upper))
    assert [r["label"] for r in rows] == [p["label"] for p in PAIRS] and stats["dropped"] == {}
    assert rows[0]["text_a"] == "THE CAT SAT ON THE MAT." and rows[5]["text_b"] is None
    rows, _ = T.translate_examples("multiple_choice", MC, Recorder(str.upper))
    assert rows[0]["choices"] == ["ON THE MAT", "IN PARIS", "IN 1990"] and rows[0]["label"] == 0
    assert rows[0]["context"] == "THE CAT SAT ON THE MAT."
    rows, stats = T.translate_examples("classification", PAIRS, Recorder(lambda t: "" if "Paris" in t else t))
    assert len(rows) == 5 and stats["dropped"] == {"empty_translation": 1}
    with pytest.raises(XstiltsError, match="tagging tasks cannot be machine-translated"):
        T.translate_examples("tagging", [{"tokens": ["a"], "tags": ["X"]}], str.upper)
    with pytest.raises(XstiltsError, match="not translated"):
        T.check_family("retrieval")


def test_cached_translator_resumes(tmp_path):
    calls = []

    def flaky(texts):
        calls.append(list(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [t.upper() for t in texts]

    path = tmp_path / "cache.jsonl"
    texts = ["a", "bb", "ccc", "dddd", "a", ""]
    with pytest.raises(KeyboardInterrupt):
        T.CachedTranslator(flaky, path, chunk=2)(texts)
    again = T.CachedTranslator(lambda ts: calls.append(list(ts)) or [t.upper() for t in ts], path, chunk=2)
    assert again.resumed == 2
    assert again(texts) == ["A", "BB", "CCC", "DDDD", "A", ""]
    assert calls[-1] == ["ccc", "dddd"] and again.new == 2


# ---------------------------------------------------------------- files, summaries, snippet, resume


def _summary(out, task, lang):
    return json.loads((out / task / f"translate-{lang}.json").read_text())


def _snippet_tasks(snippet: str, data_dir):
    from xstilts import config
    from xstilts.pipeline import register_config_tasks

    cfg = config.validate({**yaml.safe_load(snippet), "data_dir": str(data_dir)})
    register_config_tasks(cfg)
    return cfg


def test_translate_task_fake_translator_qa(data, tmp_path):
    out = tmp_path / "out"
    logs = []
    res = T.translate_task(QA_SPEC, ["de", "fr"], "fake-upper", data, out, log=logs.append,
                           make_translator=lambda lang, code: Recorder(str.upper))
    for lang in ("de", "fr"):
        s = _summary(out, "toyqa", lang)
        assert s["input"] == 6 and s["translated"] == 6 and s["dropped"] == {}
        assert s["mapped"] == {"marker": 5, "unanswerable": 1} and s["model"] == "fake-upper"
        assert s["examples_per_s"] > 0 and s["seconds"] >= 0
    assert res.summaries["en"]["translated"] == 6  # the source copy
    cfg = _snippet_tasks(res.snippet, data)
    assert cfg.intermediate.tasks == ["toyqa_mt"] and cfg.intermediate.languages == ["de", "fr"]
    assert cfg.tasks[0].languages == ["en", "de", "fr"] and cfg.tasks[0].metrics == ["f1", "exact_match"]
    from xstilts.tasks import get

    spec = get("toyqa_mt")
    for lang in ("en", "de", "fr"):
        rows = load_examples(spec, "train", lang, data)
        assert [r["id"] for r in rows] == [e["id"] for e in QA]
        check_offsets(rows)
    assert load_examples(spec, "train", "de", data)[0]["answers"]["text"] == ["ALICE"]
    assert not list((out / "toyqa").glob(".cache-*")) and not list((out / "toyqa").glob(".*tmp*"))

    # a second run skips finished languages; new settings translate again
    logs.clear()
    T.translate_task(QA_SPEC, ["de"], "fake-upper", data, out, log=logs.append,
                     make_translator=lambda lang, code: pytest.fail("should not translate"))
    assert any("done already" in x for x in logs)
    T.translate_task(QA_SPEC, ["de"], "fake-upper", data, out, log=logs.append, segment=False,
                     make_translator=lambda lang, code: Recorder(str.lower))
    assert load_examples(spec, "train", "de", data)[0]["answers"]["text"] == ["alice"]


def test_translate_task_marian(models, data, tmp_path):
    out = tmp_path / "out"
    settings = T.GenerationSettings(batch_size=4, max_new_tokens=12)
    res = T.translate_task(PAIR_SPEC, ["de"], str(models["marian"]), data, out, settings=settings, device="cpu",
                           log=lambda m: None)
    s = _summary(out, "toypair", "de")
    assert s["model_family"] == "marian" and s["input"] == len(PAIRS)
    assert s["translated"] + sum(s["dropped"].values()) == s["input"]
    assert s["generation"]["max_new_tokens"] == 12 and s["texts"]["translated"] > 0
    spec = TaskSpec(name="toypair_check", family="classification", labels=NLI,
                    files={"train": str(out / "toypair" / "train-{lang}.jsonl")})
    rows = load_examples(spec, "train", "de", None)
    by_id = {p["id"]: p for p in PAIRS}
    assert len(rows) == s["translated"]
    for r in rows:
        assert r["label"] == by_id[r["id"]]["label"]  # labels untouched
        assert isinstance(r["text_a"], str) and r["text_a"] and (r["text_b"] is None) == (by_id[r["id"]]["text_b"] is None)
    assert "toypair_mt" in res.snippet and '"entailment"' in res.snippet and "head: nli" in res.snippet
    _snippet_tasks(res.snippet, data)

    # span QA through a real (random) model: whatever is lost is counted
    T.translate_task(QA_SPEC, ["de"], str(models["marian"]), data, out, settings=settings, device="cpu",
                     log=lambda m: None)
    s = _summary(out, "toyqa", "de")
    assert s["translated"] + sum(s["dropped"].values()) == s["input"] == len(QA)
    assert set(s["dropped"]) <= set(T.DROP_REASONS) and set(s["mapped"]) <= set(T.MAPPED_BY)

    # a one-pair Marian model cannot serve two targets
    with pytest.raises(ConfigError, match="one-pair Marian model"):
        T.translate_task(PAIR_SPEC, ["fr", "ru"], str(models["marian"]), data, tmp_path / "o2", settings=settings,
                         device="cpu", log=lambda m: None)


def test_nllb_and_m2m_models(models, data, tmp_path):
    from transformers import AutoTokenizer

    settings = T.GenerationSettings(batch_size=8, max_new_tokens=6)
    out = tmp_path / "out"
    T.translate_task(PAIR_SPEC, ["de", "zh=zho_Hant"], str(models["nllb"]), data, out, settings=settings,
                     device="cpu", log=lambda m: None)
    tok = AutoTokenizer.from_pretrained(models["nllb"])
    de, zh = _summary(out, "toypair", "de"), _summary(out, "toypair", "zh")
    assert de["model_family"] == "nllb"
    assert de["lang_codes"] == {"src": "eng_Latn", "tgt": "deu_Latn",
                                "forced_bos_token_id": tok.convert_tokens_to_ids("deu_Latn")}
    assert zh["lang_codes"]["tgt"] == "zho_Hant" and (out / "toypair" / "train-zh.jsonl").exists()

    mt = T.MTModel(models["m2m"], device="cpu")
    assert mt.family == "m2m100"
    pair = mt.translator("en", "de", settings)
    assert pair.setup.forced_bos_token_id == mt.tokenizer.get_lang_id("de") and mt.tokenizer.src_lang == "en"
    got = pair(["The cat sat on the mat.", "Who wrote the book?", "a"])
    assert len(got) == 3 and not any("__" in g for g in got)  # language tokens never reach the text
    with pytest.raises(ConfigError, match="M2M100 has no language 'eu'"):
        mt.translator("en", "eu", settings)


def test_cli(models, data, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["translate", "toymc", "--to", "de,fr", "--model", str(models["m2m"]), "--data-dir", str(data),
               "--out", str(out), "--batch-size", "2", "--max-new-tokens", "5", "--device", "cpu", "--limit", "1",
               "--config", str(_config_with(tmp_path, MC_SPEC))])
    printed = capsys.readouterr().out
    assert rc == 0 and "name: toymc_mt" in printed and "languages: [de, fr]" in printed
    for lang in ("de", "fr"):
        s = _summary(out, "toymc", lang)
        assert s["translated"] + sum(s["dropped"].values()) == s["input"] == 1
    assert main(["translate", "ccg", "--to", "de", "--model", "x", "--data-dir", str(data), "--out", str(out)]) == 2
    assert "tagging tasks cannot be machine-translated" in capsys.readouterr().err
    # a file that translate did not write is not overwritten
    (out / "toymc" / "train-ru.jsonl").write_text("{}\n")
    assert main(["translate", "toymc", "--to", "ru", "--model", str(models["m2m"]), "--data-dir", str(data),
                 "--out", str(out), "--config", str(_config_with(tmp_path, MC_SPEC)), "--device", "cpu"]) == 2
    assert "was not written by `xstilts translate`" in capsys.readouterr().err


def _config_with(tmp_path, spec) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"name": spec.name, "family": spec.family,
                                               "files": {k: v for k, v in spec.files.items()}}]}))
    return path


def test_marian_multi_target_and_templates(models, data, tmp_path):
    settings = T.GenerationSettings(batch_size=4, max_new_tokens=4)
    mt = T.MTModel(models["marian_mul"], device="cpu")
    pair = mt.translator("en", "fr", settings)
    assert pair.setup.prefix == ">>fra<< " and len(pair(["The cat sat on the mat."])) == 1
    with pytest.raises(ConfigError, match="no target token for 'ja'"):
        mt.translator("en", "ja", settings)
    out = tmp_path / "out"
    T.translate_task(PAIR_SPEC, ["de", "fr"], str(models["marian_mul"]), data, out, settings=settings, device="cpu",
                     log=lambda m: None)  # one multi-target model serves both
    assert _summary(out, "toypair", "fr")["lang_codes"]["tgt"] == ">>fra<<"

    # one model per pair: {lang} in the name
    for lang in ("de", "fr"):
        (tmp_path / f"opus-mt-en-{lang}").symlink_to(models["marian"], target_is_directory=True)
    template = str(tmp_path / "opus-mt-en-{lang}")
    logs = []
    T.translate_task(PAIR_SPEC, ["de", "fr"], template, data, out / "per-pair", settings=settings, device="cpu",
                     log=logs.append)
    assert _summary(out / "per-pair", "toypair", "fr")["model"] == str(tmp_path / "opus-mt-en-fr")
    assert sum("loading" in x for x in logs) == 2
    with pytest.raises(ConfigError, match="translates into 'de', not 'fr'"):
        T.translate_task(PAIR_SPEC, ["fr"], str(tmp_path / "opus-mt-en-de"), data, out, settings=settings,
                         device="cpu", log=lambda m: None)

    # --force translates a finished language again; a file translate did not write is refused even then.
    # Markers in both files: a run that skips the language keeps them, a run that translates replaces them.
    de_file, de_summary = out / "toypair" / "train-de.jsonl", out / "toypair" / "translate-de.json"
    translated = de_file.read_text(encoding="utf-8")
    de_file.write_text("marker\n", encoding="utf-8")
    de_summary.write_text(json.dumps({**_summary(out, "toypair", "de"), "marker": 1}), encoding="utf-8")
    for force in (False, True):
        T.translate_task(PAIR_SPEC, ["de"], str(models["marian_mul"]), data, out, settings=settings, device="cpu",
                         force=force, log=lambda m: None)
        assert ("marker" in _summary(out, "toypair", "de")) is not force
        assert de_file.read_text(encoding="utf-8") == ("marker\n" if not force else translated)
    assert _summary(out, "toypair", "de")["texts"]["translated"] > 0  # translated, not reused from a cache
    (out / "toypair" / "translate-de.json").unlink()
    with pytest.raises(ConfigError, match="was not written by"):
        T.translate_task(PAIR_SPEC, ["de"], str(models["marian_mul"]), data, out, settings=settings, device="cpu",
                         force=True, log=lambda m: None)
