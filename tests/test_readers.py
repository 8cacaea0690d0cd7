"""Readers: every real benchmark file in ../shared/data gives the counts its README states,
and malformed input raises DataError naming the file, the line and the field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from xstilts import io as R
from xstilts.errors import DataError, XstiltsError

BAD = Path(__file__).resolve().parent / "fixtures" / "bad"

XNLI_LANGS = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()
PAWSX_LANGS = "de en es fr ja ko zh".split()
XQUAD_LANGS = "ar de el en es hi ro ru th tr vi zh".split()
MLQA_COUNTS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
MLQA_ARTICLES = {"ar": 238, "de": 281, "en": 520, "es": 259, "hi": 217, "vi": 228, "zh": 244}
TYDIQA_COUNTS = {"ar": 921, "bn": 113, "en": 440, "fi": 782, "id": 565, "ko": 276, "ru": 812, "sw": 499, "te": 669}
UDPOS_DEV_LANGS = ("af ar bg de el en es et eu fa fi fr he hi hu id it ja ko lt mr nl pl pt ro ru ta te tr uk "
                   "ur vi wo zh").split()
UDPOS_DEV_COUNTS = {"en": 3974, "de": 19233, "zh": 1000, "mr": 46}
PANX_DEV_LANGS = ("af ar az bg bn de el en es et eu fa fi fr gu he hi hu id it ja jv ka kk ko lt ml mr ms my nl "
                  "pa pl pt qu ro ru sw ta te tl tr uk ur vi yo zh").split()
UD_TABLE = {
    "en_ewt-ud-dev": (2001, 25147), "en_ewt-ud-test": (2077, 25094), "de_gsd-ud-test": (977, 16499),
    "es_gsd-ud-test": (427, 12002), "zh_gsd-ud-test": (500, 12010), "fi_tdt-ud-test": (1555, 21070),
    "tr_imst-ud-test": (1100, 10032), "en_pud-ud-test": (1000, 21180), "hi_pud-ud-test": (1000, 23829),
    "ar_pud-ud-test": (1000, 20747), "ru_pud-ud-test": (1000, 19355),
}
XCOPA_LANGS = "et ht id it qu sw ta th tr vi zh".split()
LAREQA_LANGS = "ar de el en es hi ru th tr vi zh".split()


@pytest.fixture(scope="module")
def data(shared_data) -> Path:
    return shared_data  # the benchmark data: these tests are tiered real_data (conftest.TIERS)


def _read(fn, *args, **kw):
    """Read strictly and check that stats agree with what came back."""
    st = R.ReadStats()
    out = fn(*args, stats=st, **kw)
    assert st.skipped == 0 and st.errors == []
    return out, st


# ---------------------------------------------------------------- real data: classification


@pytest.mark.parametrize("lang", XNLI_LANGS)
def test_xnli_dev_and_test(data, lang):
    dev, st = _read(R.read_xnli, data / "xnli" / f"dev-{lang}.tsv")
    test, _ = _read(R.read_xnli, data / "xnli" / f"test-{lang}.tsv")
    assert len(dev) == st.read == 2490 and len(test) == 5010
    for ex in dev[:3] + test[:3]:
        assert set(ex) == {"text_a", "text_b", "label"}
        assert ex["text_a"] and ex["text_b"] and ex["label"] in R.NLI_LABELS
    # balanced classes, as in XNLI
    assert {lab: sum(e["label"] == lab for e in test) for lab in R.NLI_LABELS} == dict.fromkeys(R.NLI_LABELS, 1670)


def test_xnli_labels_shared_across_languages(data):
    en = [e["label"] for e in R.read_xnli(data / "xnli" / "dev-en.tsv")]
    assert en == [e["label"] for e in R.read_xnli(data / "xnli" / "dev-sw.tsv")]


def test_pawsx_quoted_fields_unquoted(data):
    # fields containing '"' are csv-quoted with doubled quotes; the reader returns the plain text
    rows = R.read_pawsx(data / "pawsx" / "test-zh.tsv")
    texts = {e["text_a"] for e in rows} | {e["text_b"] for e in rows}
    assert '"Pure" 的意思是简单地，而 "Belter" 或 "Belta" 的意思是很棒或很好。' in texts
    assert '"Fall Beil" 于 1949 年最后一次在西德使用并于 1966 年在东德使用。' in texts
    assert not any(t.startswith('"') and t.endswith('"') and '""' in t for t in texts)


@pytest.mark.parametrize("name", [f"dev-{lang}" for lang in PAWSX_LANGS] + ["test-de", "test-zh"])
def test_pawsx(data, name):
    rows, _ = _read(R.read_pawsx, data / "pawsx" / f"{name}.tsv")
    assert len(rows) == 2000
    assert {e["label"] for e in rows} == {"0", "1"}


def test_pawsx_test_labels_differ_between_languages(data):
    de = [e["label"] for e in R.read_pawsx(data / "pawsx" / "test-de.tsv")]
    zh = [e["label"] for e in R.read_pawsx(data / "pawsx" / "test-zh.tsv")]
    assert sum(a == b for a, b in zip(de, zh)) == 1983  # README: 1983/2000 agree


# ---------------------------------------------------------------- real data: span QA


def test_xquad_all_languages_parallel(data):
    ids = None
    for lang in XQUAD_LANGS:
        rows, st = _read(R.read_xquad, data / "xquad" / f"xquad.{lang}.json")
        assert len(rows) == 1190 and st.answer_offset_mismatches == 0, lang
        assert len({e["context"] for e in rows}) == 240, lang
        lang_ids = [e["id"] for e in rows]
        ids = ids or lang_ids
        assert lang_ids == ids, lang
    ex = rows[0]
    assert set(ex) == {"id", "question", "context", "answers"}
    assert set(ex["answers"]) == {"text", "answer_start"}


@pytest.mark.parametrize("lang", sorted(MLQA_COUNTS))
def test_mlqa_dev(data, lang):
    rows, _ = _read(R.read_mlqa, data / "mlqa" / "dev" / f"dev-context-{lang}-question-{lang}.json")
    assert len(rows) == MLQA_COUNTS[lang]
    for e in rows:
        (text,), (start,) = e["answers"]["text"], e["answers"]["answer_start"]
        assert e["context"][start:start + len(text)] == text
    doc = json.loads((data / "mlqa" / "dev" / f"dev-context-{lang}-question-{lang}.json").read_text("utf-8"))
    assert len(doc["data"]) == MLQA_ARTICLES[lang]


def test_tydiqa_goldp(data):
    total = 0
    for lang, n in TYDIQA_COUNTS.items():
        rows, _ = _read(R.read_tydiqa, data / "tydiqa" / "dev" / f"tydiqa.goldp.{lang}.dev.json")
        assert len(rows) == n, lang
        assert all(e["answers"]["text"] for e in rows)
        total += n
    assert total == 5077
    # the dev set has several reference answers per question for many questions
    assert any(len(e["answers"]["text"]) > 1 for e in rows)
    train_file = data / "tydiqa" / "train" / "tydiqa.goldp.en.train.json"
    train, st = _read(R.read_tydiqa, train_file, duplicate_ids="rename")
    assert len(train) == 3696
    # the XTREME English train split reuses small integers as ids (89 distinct); for training they are made
    # unique, by default (evaluation files: predictions are scored by id) a repeat is an error
    e = _raises(R.read_tydiqa, train_file)
    assert e.field == "data[2].paragraphs[0].qas[0].id" and "first at data[1].paragraphs[0].qas[0]" in str(e)
    assert st.duplicate_ids == 3696 - 89 and len({e["id"] for e in train}) == 3696
    assert train[1]["id"] == "0" and train[2]["id"] == "0~1"


def test_lareqa_xquad_r(data):
    xquad_ids = {e["id"] for e in R.read_xquad(data / "xquad" / "xquad.en.json")}
    for lang in LAREQA_LANGS:
        out, st = _read(R.read_xquad_r, data / "lareqa" / "xquad-r" / f"{lang}.json.gz")
        qs, sents = out["questions"], out["sentences"]
        assert len(qs) == st.read == 1190, lang
        assert {q["id"] for q in qs} == xquad_ids, lang
        sent_ids = {s["id"] for s in sents}
        assert len(sent_ids) == len(sents)
        assert all(len(q["answer_sentence_ids"]) == 1 and q["answer_sentence_ids"][0] in sent_ids for q in qs)
        assert all(set(s) == {"id", "text", "context"} and s["text"] for s in sents)
    # a known record: the answer "308" sits in the first sentence of the first English paragraph
    en = R.read_xquad_r(data / "lareqa" / "xquad-r" / "en.json.gz")
    first = next(q for q in en["questions"] if q["id"] == "56beb4343aeaaa14008c925b")
    by_id = {s["id"]: s for s in en["sentences"]}
    assert "308 points" in by_id[first["answer_sentence_ids"][0]]["text"]
    assert len(en["sentences"]) == 1180


# ---------------------------------------------------------------- real data: tagging


def test_udpos_train(data):
    rows, _ = _read(R.read_udpos, data / "udpos" / "train-en.tsv.gz")
    assert len(rows) == 21253
    assert sum(len(e["tokens"]) for e in rows) == 375194
    assert all(len(e["tokens"]) == len(e["tags"]) for e in rows)


def test_udpos_dev_all_languages(data):
    for lang in UDPOS_DEV_LANGS:
        rows, _ = _read(R.read_udpos, data / "udpos" / f"dev-{lang}.tsv.gz")
        assert rows, lang
        if lang in UDPOS_DEV_COUNTS:
            assert len(rows) == UDPOS_DEV_COUNTS[lang], lang
    assert len(list((data / "udpos").glob("dev-*.tsv.gz"))) == len(UDPOS_DEV_LANGS)


@pytest.mark.parametrize("name", sorted(UD_TABLE))
def test_ud_conllu(data, name):
    rows, _ = _read(R.read_conllu, data / "ud" / f"{name}.conllu.gz")
    sents, tokens = UD_TABLE[name]
    assert (len(rows), sum(len(e["tokens"]) for e in rows)) == (sents, tokens)
    assert all(set(e["tags"]) <= set(R.UPOS_TAGS) for e in rows)


def test_panx(data):
    rows, _ = _read(R.read_panx, data / "panx" / "train-en.tsv.gz")
    assert len(rows) == 20000
    for lang in PANX_DEV_LANGS:
        dev, _ = _read(R.read_panx, data / "panx" / f"dev-{lang}.tsv.gz")
        assert len(dev) in (100, 1000, 10000), (lang, len(dev))
        if lang in ("en", "de", "zh"):
            assert len(dev) == 10000
    assert len(list((data / "panx").glob("dev-*.tsv.gz"))) == len(PANX_DEV_LANGS)


# ---------------------------------------------------------------- real data: multiple choice


def test_xcopa(data):
    for lang in XCOPA_LANGS:
        val, _ = _read(R.read_xcopa, data / "xcopa" / "data" / lang / f"val.{lang}.jsonl")
        test, _ = _read(R.read_xcopa, data / "xcopa" / "data" / lang / f"test.{lang}.jsonl")
        assert (len(val), len(test)) == (100, 500), lang
        if lang != "qu":  # translate-test: no Quechua
            gmt_dir = data / "xcopa" / "data-gmt" / lang
            assert [len(R.read_xcopa(p)) for p in sorted(gmt_dir.glob("*.jsonl"))] == [500, 100], lang
    ex = test[0]
    assert set(ex) == {"context", "question", "choices", "label"}
    assert ex["question"] in R.COPA_QUESTIONS.values() and len(ex["choices"]) == 2 and ex["label"] in (0, 1)


def test_copa_en(data):
    train, _ = _read(R.read_copa, data / "xcopa" / "copa_en" / "train-en.jsonl")
    val, _ = _read(R.read_copa, data / "xcopa" / "copa_en" / "val-en.jsonl")
    assert (len(train), len(val)) == (400, 100)
    assert train[0] == {"context": "My body cast a shadow over the grass.", "question": "What was the cause?",
                        "choices": ["The sun was rising.", "The grass was cut."], "label": 0}


def test_siqa(data):
    train, _ = _read(R.read_siqa, data / "siqa" / "train.jsonl")  # finds train-labels.lst beside it
    dev, _ = _read(R.read_siqa, data / "siqa" / "dev.jsonl", labels_path=data / "siqa" / "dev-labels.lst")
    test, _ = _read(R.read_siqa, data / "siqa" / "v1.4" / "socialIQa_v1.4_tst.jsonl")  # "correct": A/B/C
    assert (len(train), len(dev), len(test)) == (20000, 1954, 2224)
    assert {e["label"] for e in train} == {0, 1, 2}
    labels = (data / "siqa" / "dev-labels.lst").read_text().split()
    assert [e["label"] + 1 for e in dev] == [int(x) for x in labels]
    assert test[0]["label"] == 2 and test[1]["label"] == 1  # "C", "B"


def test_cosmosqa(data):
    rows, _ = _read(R.read_cosmosqa, data / "cosmosqa" / "valid.csv")
    assert len(rows) == 2985
    assert {e["label"] for e in rows} == {0, 1, 2, 3} and all(len(e["choices"]) == 4 for e in rows)
    assert rows[0]["question"] == "Why is this person asking about divorce ?" and rows[0]["label"] == 1


def test_commonsenseqa(data):
    rows, _ = _read(R.read_commonsenseqa, data / "commonsenseqa" / "dev_rand_split.jsonl")
    assert len(rows) == 1221 and all(len(e["choices"]) == 5 for e in rows)
    assert rows[0]["choices"][rows[0]["label"]] == "bank"


def test_hellaswag(data):
    rows, _ = _read(R.read_hellaswag, data / "hellaswag" / "hellaswag_val.jsonl.gz")
    assert len(rows) == 10042 and all(len(e["choices"]) == 4 for e in rows)
    assert rows[0]["context"].startswith("Roof shingle removal: ") and rows[0]["label"] == 3


# ---------------------------------------------------------------- real data: retrieval


def test_tatoeba_all_pairs_aligned(data):
    srcs = sorted(p for p in (data / "tatoeba").glob("tatoeba.*-eng.*") if not p.name.endswith(".eng"))
    assert len(srcs) == 112
    sizes = {}
    for src in srcs:
        pair = src.name.split(".")[1]
        out, st = _read(R.read_tatoeba, src, src.with_name(f"tatoeba.{pair}.eng"))
        assert len(out["source"]) == len(out["target"]) == st.read
        sizes[pair.split("-")[0]] = st.read
    assert sizes["deu"] == sizes["fra"] == sizes["cmn"] == 1000
    assert min(sizes.values()) == 104


def test_bucc(data):
    d = data / "bucc2018"
    out, _ = _read(R.read_bucc, d / "zh-en.dev.zh", d / "zh-en.dev.en", d / "zh-en.dev.gold")
    assert (len(out["source"]), len(out["target"]), len(out["gold"])) == (8624, 13589, 257)
    assert out["gold"][0] == ("zh-000000057", "en-000008530")
    assert R.read_bucc(d / "zh-en.dev.zh", d / "zh-en.dev.en")["gold"] == []


def test_every_shared_data_file_is_covered(data):
    """Guard: a new data file in ../shared/data must get a reader test above."""
    covered_dirs = {"xnli", "pawsx", "xquad", "mlqa", "tydiqa", "lareqa", "udpos", "ud", "panx", "xcopa", "siqa",
                    "cosmosqa", "commonsenseqa", "hellaswag", "tatoeba", "bucc2018"}
    dirs = {p.name for p in data.iterdir() if p.is_dir()}
    assert dirs == covered_dirs


# ---------------------------------------------------------------- malformed input


def _raises(fn, *args, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        fn(*args, **kw)
    assert isinstance(info.value, XstiltsError)
    return info.value


def test_truncated_json():
    e = _raises(R.read_squad, BAD / "truncated_squad.json")
    assert "truncated_squad.json:13:" in str(e) and e.line == 13


def test_json_record_missing_field():
    e = _raises(R.read_xcopa, BAD / "xcopa_missing_field.jsonl")
    assert "xcopa_missing_field.jsonl:3:" in str(e) and e.field == "premise" and "premise" in str(e)


def test_squad_missing_field_names_index_path():
    e = _raises(R.read_squad, BAD / "squad_bad_records.json")
    assert "squad_bad_records.json" in str(e) and e.line is None
    assert e.field == "data[0].paragraphs[0].qas[1].question"


def test_squad_answer_offset_mismatch():
    st = R.ReadStats()
    rows = R.read_squad(BAD / "squad_bad_records.json", skip_invalid=True, stats=st)
    assert [r["id"] for r in rows] == ["q1"] and st.skipped == 2
    assert any("qas[2].answers[0].answer_start" in m for m in st.errors)
    # lenient mode keeps the mismatched answer and counts it
    st = R.ReadStats()
    rows = R.read_squad(BAD / "squad_bad_records.json", skip_invalid=True, stats=st, strict_offsets=False)
    assert [r["id"] for r in rows] == ["q1", "q3"] and st.answer_offset_mismatches == 1 and st.skipped == 1


def test_unknown_label():
    e = _raises(R.read_xnli, BAD / "xnli_unknown_label.tsv")
    assert "xnli_unknown_label.tsv:3:" in str(e) and "'entailed'" in str(e) and e.field == "label"
    # the same file is fine with a label set that knows the label; the quoted field is unquoted
    rows = R.read_xnli(BAD / "xnli_unknown_label.tsv", labels=None)
    assert rows[0]["text_a"] == 'He said "hi" twice.' and rows[2]["label"] == "entailed"


def test_bad_encoding():
    e = _raises(R.read_xnli, BAD / "xnli_bad_utf8.tsv")
    assert "xnli_bad_utf8.tsv:3:" in str(e) and "UTF-8" in str(e)


def test_bad_encoding_in_gzip(tmp_path):
    p = tmp_path / "dev-xx.tsv.gz"
    p.write_bytes(gzip.compress((BAD / "xnli_bad_utf8.tsv").read_bytes()))
    e = _raises(R.read_xnli, p)
    assert "dev-xx.tsv.gz:3:" in str(e)
    st = R.ReadStats()
    assert len(R.read_xnli(p, skip_invalid=True, stats=st)) == 3 and st.skipped == 1


def test_bad_encoding_in_json_document(tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(b'{"data": [\n{"title": "caf\xe9"}\n]}\n')
    e = _raises(R.read_squad, p, skip_invalid=True)  # fatal even when skipping: no record boundary
    assert "bad.json:2:" in str(e)


def test_wrong_column_count():
    e = _raises(R.read_pawsx, BAD / "pawsx_wrong_columns.tsv")
    # line 2-3 hold one quoted record spanning two lines, so the short row is on line 4
    assert "pawsx_wrong_columns.tsv:4:" in str(e) and "got 2" in str(e)
    st = R.ReadStats()
    rows = R.read_pawsx(BAD / "pawsx_wrong_columns.tsv", skip_invalid=True, stats=st)
    assert len(rows) == 3 and st.skipped == 1 and rows[1]["text_a"] == "A quoted\r\nfield over two lines"


def test_tag_line_without_tab():
    e = _raises(R.read_panx, BAD / "panx_no_tab.tsv")
    assert "panx_no_tab.tsv:6:" in str(e) and "no tab" in str(e)


def test_more_tags_than_tokens():
    e = _raises(R.read_udpos, BAD / "udpos_extra_tags.tsv")
    assert "udpos_extra_tags.tsv:2:" in str(e) and "more tags than tokens" in str(e)
    st = R.ReadStats()
    rows = R.read_udpos(BAD / "udpos_extra_tags.tsv", skip_invalid=True, stats=st)
    assert rows == [{"tokens": ["Dogs", "bark"], "tags": ["NOUN", "VERB"]}] and st.skipped == 1


def test_unknown_tag(tmp_path):
    p = tmp_path / "dev-xx.tsv"
    p.write_text("Alice\tB-PER\nSmith\tI-PERSON\n", encoding="utf-8")
    e = _raises(R.read_panx, p)
    assert "dev-xx.tsv:2:" in str(e) and "'I-PERSON'" in str(e)
    assert R.read_panx(p, labels=None)[0]["tags"] == ["B-PER", "I-PERSON"]


def test_skip_invalid_counts_every_bad_record():
    st = R.ReadStats()
    rows = R.read_copa(BAD / "copa_mixed.jsonl", skip_invalid=True, stats=st)
    assert len(rows) == 3 and st.read == 3 and st.skipped == 3
    assert [m.split(":")[1] for m in (m.split("bad/")[-1] for m in st.errors)] == ["2", "4", "5"]
    # without skip_invalid the first bad record (line 2) raises
    e = _raises(R.read_copa, BAD / "copa_mixed.jsonl")
    assert "copa_mixed.jsonl:2:" in str(e)
    # stats accumulate over several files
    R.read_copa(BAD / "copa_mixed.jsonl", skip_invalid=True, stats=st)
    assert (st.read, st.skipped) == (6, 6)


def test_conllu_bad_word_id():
    e = _raises(R.read_conllu, BAD / "conllu_bad_id.conllu")
    assert "conllu_bad_id.conllu:9:" in str(e) and e.field == "ID"


def test_siqa_bad_label_names_labels_file(tmp_path):
    e = _raises(R.read_siqa, BAD / "siqa_bad.jsonl")
    assert "siqa_bad-labels.lst:2:" in str(e)
    short = tmp_path / "short-labels.lst"
    short.write_text("1\n2\n")
    e = _raises(R.read_siqa, BAD / "siqa_bad.jsonl", labels_path=short)
    assert "short-labels.lst" in str(e) and "not aligned" in str(e)


def test_bucc_unknown_gold_id():
    e = _raises(R.read_bucc, BAD / "bucc_bad.src", BAD / "bucc_bad.tgt", BAD / "bucc_bad.gold")
    assert "bucc_bad.gold:2:" in str(e) and "'en-9'" in str(e)


def test_tatoeba_unaligned(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("eins\nzwei\n", encoding="utf-8")
    e = _raises(R.read_tatoeba, tmp_path / "a.txt", tmp_path / "b.txt")
    assert "a.txt:3:" in str(e) and "not aligned" in str(e)


def test_missing_file(tmp_path):
    e = _raises(R.read_xnli, tmp_path / "nope.tsv")
    assert "nope.tsv" in str(e) and "not found" in str(e)


# ---------------------------------------------------------------- formats not in shared data (inline samples)


def _jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_mnli_snli_no_gold_counted(tmp_path):
    p = _jsonl(tmp_path / "mnli.jsonl", [
        {"sentence1": "A", "sentence2": "B", "gold_label": "neutral", "pairID": "1"},
        {"sentence1": "C", "sentence2": "D", "gold_label": "-", "pairID": "2"},
        {"sentence1": "E", "sentence2": "F", "gold_label": "entailment", "pairID": "3"},
    ])
    st = R.ReadStats()
    rows = R.read_mnli(p, stats=st)
    assert rows == [{"text_a": "A", "text_b": "B", "label": "neutral"},
                    {"text_a": "E", "text_b": "F", "label": "entailment"}]
    assert (st.read, st.no_gold, st.skipped) == (2, 1, 0)
    assert R.read_snli is R.read_mnli


def test_anli(tmp_path):
    p = _jsonl(tmp_path / "anli.jsonl", [
        {"uid": "1", "premise": "P", "hypothesis": "H", "label": "e"},
        {"uid": "2", "context": "P2", "hypothesis": "H2", "label": "c"},  # official release layout
        {"uid": "3", "premise": "P3", "hypothesis": "H3", "label": "x"},
    ])
    e = _raises(R.read_anli, p)
    assert "anli.jsonl:3:" in str(e) and "'x'" in str(e)
    rows = R.read_anli(p, skip_invalid=True)
    assert [(r["text_a"], r["label"]) for r in rows] == [("P", "entailment"), ("P2", "contradiction")]


def test_qqp(tmp_path):
    p = tmp_path / "dev.tsv"
    p.write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                 '1\t2\t3\tWhat is "AI"?\tWhat does AI mean?\t1\n'
                 "4\t5\t6\tHow old?\n", encoding="utf-8")
    e = _raises(R.read_qqp, p)
    assert "dev.tsv:3:" in str(e)
    st = R.ReadStats()
    assert R.read_qqp(p, skip_invalid=True, stats=st) == [
        {"text_a": 'What is "AI"?', "text_b": "What does AI mean?", "label": "1"}]
    assert st.skipped == 1


def test_cosmosqa_jsonl(tmp_path):
    p = _jsonl(tmp_path / "valid.jsonl", [{"id": "a", "context": "C", "question": "Q", "answer0": "0", "answer1": "1",
                                           "answer2": "2", "answer3": "3", "label": "2"}])
    assert R.read_cosmosqa(p) == [{"context": "C", "question": "Q", "choices": ["0", "1", "2", "3"], "label": 2}]


def test_commonsenseqa_original_layout(tmp_path):
    p = _jsonl(tmp_path / "dev.jsonl", [{"id": "x", "answerKey": "B", "question": {
        "question_concept": "c", "stem": "Where?", "choices": [{"label": "A", "text": "here"},
                                                                {"label": "B", "text": "there"}]}}])
    assert R.read_commonsenseqa(p) == [{"context": "", "question": "Where?", "choices": ["here", "there"], "label": 1}]


def test_hellaswag_official_layout(tmp_path):
    p = _jsonl(tmp_path / "hellaswag_val.jsonl", [{
        "ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
        "ctx": "A man is sitting on a roof. he", "split": "val", "split_type": "indomain", "label": 3,
        "endings": ["a", "b", "c", "d"], "source_id": "x"}])
    assert R.read_hellaswag(p) == [{"context": "Roof shingle removal: A man is sitting on a roof. he",
                                    "question": "", "choices": ["a", "b", "c", "d"], "label": 3}]


def test_squad_v2(tmp_path):
    p = tmp_path / "dev-v2.0.json"
    p.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": [{
        "context": "Rome is in Italy.", "qas": [
            {"id": "a", "question": "Where is Rome?", "answers": [{"text": "Italy", "answer_start": 11}],
             "is_impossible": False},
            {"id": "b", "question": "Where is Paris?", "answers": [],
             "plausible_answers": [{"text": "Italy", "answer_start": 11}], "is_impossible": True},
            {"id": "c", "question": "No answers?", "answers": []}]}]}]}), encoding="utf-8")
    e = _raises(R.read_squad, p)
    assert e.field == "data[0].paragraphs[0].qas[2].answers" and "dev-v2.0.json" in str(e)
    rows = R.read_squad(p, require_answers=False)
    assert rows[1]["answers"] == {"text": [], "answer_start": []}
    assert rows[0]["answers"] == {"text": ["Italy"], "answer_start": [11]}


def test_ccg_both_layouts(tmp_path):
    pipe = tmp_path / "wsj_00.stagged"
    pipe.write_text("# generated by a tool\n\nPierre|NNP|N/N Vinken|NNP|N ,|,|,\nIt|PRP|NP rains|VBZ|S[dcl]\\NP\n"
                    "broken|NN\n", encoding="utf-8")
    e = _raises(R.read_ccg, pipe)
    assert "wsj_00.stagged:5:" in str(e)
    rows = R.read_ccg(pipe, skip_invalid=True)
    assert rows[0] == {"tokens": ["Pierre", "Vinken", ","], "tags": ["N/N", "N", ","]}
    assert rows[1]["tags"] == ["NP", "S[dcl]\\NP"]
    tsv = tmp_path / "ccg.tsv"
    tsv.write_text("Pierre\tN/N\nVinken\tN\n\nIt\tNP\n", encoding="utf-8")
    assert R.read_ccg(tsv) == [{"tokens": ["Pierre", "Vinken"], "tags": ["N/N", "N"]},
                               {"tokens": ["It"], "tags": ["NP"]}]


def test_conllu_skips_ranges_and_empty_nodes(tmp_path):
    p = tmp_path / "x.conllu"
    p.write_text("# sent_id = 1\n1-2\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n1\tde\tde\tADP\t_\t_\t3\tcase\t_\t_\n"
                 "2\tel\tel\tDET\t_\t_\t3\tdet\t_\t_\n3\tmar\tmar\tNOUN\t_\t_\t0\troot\t_\t_\n"
                 "3.1\tvio\tver\tVERB\t_\t_\t_\t_\t3:x\t_\n", encoding="utf-8")
    assert R.read_conllu(p) == [{"tokens": ["de", "el", "mar"], "tags": ["ADP", "DET", "NOUN"]}]


MEWSLI_TEXT = "Transit strike affects 100,000 in Helsinki\n\nIn Helsinki, the union went on strike."


def test_mewsli_x(tmp_path):
    ctx = {"document_title": "Transit strike", "document_url": "https://en.wikinews.org/wiki?curid=1",
           "document_id": "en-1", "language": "en", "text": MEWSLI_TEXT,
           "sentence_spans": [{"start": 0, "end": 42}, {"start": 44, "end": 82}]}
    entity = {"entity_id": "Q1757", "title": "Helsinki", "description": "Helsinki is the capital of Finland.",
              "description_url": "https://en.wikipedia.org/wiki/Helsinki", "description_language": "en",
              "sentence_spans": [{"start": 0, "end": 35}]}
    news = _jsonl(tmp_path / "wikinews_mentions-dev.jsonl", [{"context": ctx, "mentions": [
        {"example_id": "m1", "mention_span": {"start": 34, "end": 42, "text": "Helsinki"}, "entity_id": "Q1757"},
        {"example_id": "m2", "mention_span": {"start": 47, "end": 55, "text": "Helsinki"}, "entity_id": "Q1757"}]}])
    rows = R.read_mewsli_x(news)
    assert [(r["id"], r["start"], r["mention"], r["entity_id"], r["language"]) for r in rows] == [
        ("m1", 34, "Helsinki", "Q1757", "en"), ("m2", 47, "Helsinki", "Q1757", "en")]
    assert rows[0]["context"] == MEWSLI_TEXT
    pairs = _jsonl(tmp_path / "wikipedia_pairs-dev.jsonl", [{"contextual_mention": {
        "context": ctx, "mention": {"example_id": "p1", "mention_span": {"start": 34, "end": 42, "text": "Helsinki"},
                                    "entity_id": "Q1757"}}, "entity": entity}])
    (row,) = R.read_mewsli_x(pairs)
    assert row["entity"] == {"entity_id": "Q1757", "title": "Helsinki",
                             "description": "Helsinki is the capital of Finland.", "language": "en"}
    ents = _jsonl(tmp_path / "candidate_set_entities.jsonl", [entity])
    assert R.read_mewsli_x_entities(ents) == [row["entity"]]
    # a span that does not match, and a no-text release file
    bad = _jsonl(tmp_path / "bad.jsonl", [
        {"context": ctx, "mentions": [{"example_id": "m", "mention_span": {"start": 0, "end": 8, "text": "Helsinki"},
                                       "entity_id": "Q1"}]},
        {"context": {**ctx, "text": ""}, "mentions": [
            {"example_id": "n", "mention_span": {"start": 0, "end": 8, "text": "Helsinki"}, "entity_id": "Q1"}]}])
    e = _raises(R.read_mewsli_x, bad)
    assert "bad.jsonl:1:" in str(e) and e.field == "mentions[0].mention_span.start"
    st = R.ReadStats()
    assert R.read_mewsli_x(bad, skip_invalid=True, stats=st) == [] and st.skipped == 2
    assert "context.text" in st.errors[1]


def test_readers_registry(data, tmp_path):
    """The registry load_examples uses: every registered task's format has a reader, and through it each task's
    smallest shared file reads into the family's records, as many as ../shared/data/README.md states.
    (Formats without a shared file are read by the inline tests above; a reader wired under another format's
    name fails here on labels, fields or counts.)"""
    from xstilts import tasks
    from xstilts.data import REQUIRED_FIELDS, load_examples, readers, task_file

    readme_counts = {"commonsenseqa": 1221, "copa": 100, "cosmosqa": 2985, "hellaswag": 10042, "mlqa": 500,
                     "panx": 100, "panx_r": 100, "pawsx": 2000, "siqa": 1954, "tydiqa": 113, "udpos": 46,
                     "udpos_r": 46, "xcopa": 100, "xnli": 2490, "xquad": 1190,
                     # UD treebank test sets: the data README's table (sentences)
                     "udpos_ewt": 2077, "udpos_gsd": 427, "udpos_imst": 1100, "udpos_pud": 1000, "udpos_tdt": 1555}
    table, counts = readers(), {}
    for name in tasks.names():
        spec = tasks.get(name)
        if spec.family == "retrieval" and spec.format not in table:
            continue  # Tatoeba, BUCC, XQuAD-R: parallel files, read by the retrieval family
        assert spec.format in table, f"task {name}: no reader for format {spec.format!r}"
        files = [(path.stat().st_size, split, lang) for split in spec.files
                 for lang in dict.fromkeys(("en", *spec.languages))
                 if (path := task_file(spec, split, lang, data)).exists()]
        if files:
            _, split, lang = min(files)
            examples = load_examples(spec, split, lang, data)
            assert all(set(REQUIRED_FIELDS[spec.family]) <= set(e) for e in examples), name
            counts[name] = len(examples)
    assert counts == readme_counts
    # the tagging formats check their own tag sets: a PAN-X tag is no UPOS tag, and the other way round
    for fmt, line in (("udpos", "Alice\tB-PER\n"), ("panx", "Alice\tPROPN\n")):
        (tmp_path / f"{fmt}.tsv").write_text(line, encoding="utf-8")
        with pytest.raises(DataError, match="unknown label"):
            table[fmt](tmp_path / f"{fmt}.tsv")


# ---------------------------------------------------------------- damaged copies of real files (issue 12)
# One defect per file, every other line real; each must be an error naming file, line and field, from the
# reader and from `xstilts data check` (rc 2, message on stderr).


def _damaged(data: Path, tmp_path: Path, rel: str, edit) -> Path:
    """A copy of the real ``rel`` under ``tmp_path/data`` with ``edit(text) -> text`` applied."""
    raw = (data / rel).read_bytes()
    text = (gzip.decompress(raw) if rel.endswith(".gz") else raw).decode("utf-8")
    out = tmp_path / "data" / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    body = edit(text).encode("utf-8")
    out.write_bytes(gzip.compress(body) if rel.endswith(".gz") else body)
    return out


def _on_line(n: int, fn):
    """An edit applying ``fn`` to line ``n`` (1-based, without its line end)."""
    def edit(text):
        lines = text.split("\n")
        cr = lines[n - 1].endswith("\r")
        lines[n - 1] = fn(lines[n - 1].rstrip("\r")) + ("\r" if cr else "")
        return "\n".join(lines)
    return edit


def _json_edit(fn):
    """An edit applying ``fn`` to the JSON value of a line (JSONL) or of the whole text (a JSON document)."""
    def edit(text):
        doc = json.loads(text)
        fn(doc)
        return json.dumps(doc, ensure_ascii=False)
    return edit


def _column(i: int, value: str):
    return lambda line: "\t".join(value if k == i else x for k, x in enumerate(line.split("\t")))


def _data_check(tmp_path: Path, task: str, capsys) -> tuple[int, str]:
    from xstilts.cli import main

    capsys.readouterr()
    rc = main(["data", "check", str(tmp_path / "data"), "--tasks", task])
    return rc, capsys.readouterr().err


def _fails_located(tmp_path, task, capsys, where: str, field: str | None = None) -> str:
    rc, err = _data_check(tmp_path, task, capsys)
    assert rc == 2 and where in err and "Traceback" not in err, err
    assert field is None or f"field '{field}'" in err, err
    return err


def test_real_empty_premise_and_hypothesis(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "xnli/dev-en.tsv", _on_line(10, _column(0, "")))
    e = _raises(R.read_xnli, p)
    assert (e.line, e.field) == (10, "premise") and "dev-en.tsv:10:" in str(e)
    st = R.ReadStats()
    assert len(R.read_xnli(p, skip_invalid=True, stats=st)) == 2489 and st.skipped == 1
    _fails_located(tmp_path, "xnli", capsys, "dev-en.tsv:10:", "premise")
    p = _damaged(data, tmp_path, "pawsx/dev-de.tsv", _on_line(20, _column(1, "  ")))
    e = _raises(R.read_pawsx, p)
    assert (e.line, e.field) == (20, "sentence2") and "whitespace" in str(e)


def test_real_empty_premise_question_choice_jsonl(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "xcopa/data/et/val.et.jsonl", _on_line(5, _json_edit(lambda o: o.update(premise=""))))
    e = _raises(R.read_xcopa, p)
    assert (e.line, e.field) == (5, "premise")
    _fails_located(tmp_path, "xcopa", capsys, "val.et.jsonl:5:", "premise")
    p = _damaged(data, tmp_path, "siqa/v1.4/socialIQa_v1.4_tst.jsonl",
                 _on_line(3, _json_edit(lambda o: o.update(question=""))))
    assert (_raises(R.read_siqa, p).line, _raises(R.read_siqa, p).field) == (3, "question")
    p = _damaged(data, tmp_path, "hellaswag/hellaswag_val.jsonl.gz",
                 _on_line(8, _json_edit(lambda o: o["endings"].__setitem__(2, ""))))
    e = _raises(R.read_hellaswag, p)
    assert (e.line, e.field) == (8, "endings[2]")


def test_real_empty_squad_question(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "xquad/xquad.de.json",
                 _json_edit(lambda d: d["data"][1]["paragraphs"][2]["qas"][0].update(question="")))
    e = _raises(R.read_xquad, p)
    assert e.field == "data[1].paragraphs[2].qas[0].question" and e.line is None
    _fails_located(tmp_path, "xquad", capsys, "xquad.de.json:", "data[1].paragraphs[2].qas[0].question")


def test_real_empty_bucc_sentence(data, tmp_path):
    p = _damaged(data, tmp_path, "bucc2018/zh-en.dev.en", _on_line(30, lambda line: line.split("\t")[0] + "\t"))
    e = _raises(R.read_bucc, data / "bucc2018/zh-en.dev.zh", p)
    assert (e.line, e.field) == (30, "sentence") and "zh-en.dev.en:30:" in str(e)


def test_real_blank_line_inside_tsv(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "pawsx/test-zh.tsv", _on_line(5, lambda line: line + "\r\n"))
    e = _raises(R.read_pawsx, p)
    assert e.line == 6 and "blank line" in str(e)
    st = R.ReadStats()
    assert len(R.read_pawsx(p, skip_invalid=True, stats=st)) == 2000 and st.skipped == 1
    _fails_located(tmp_path, "pawsx", capsys, "test-zh.tsv:6:")
    # blank lines after the last record are not an error
    p.write_bytes((data / "pawsx/test-zh.tsv").read_bytes() + b"\r\n\r\n")
    assert len(R.read_pawsx(p)) == 2000


def test_real_empty_file(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "xcopa/data/et/val.et.jsonl", lambda text: "")
    assert "empty file" in str(_raises(R.read_xcopa, p))
    err = _fails_located(tmp_path, "xcopa", capsys, "val.et.jsonl:")
    assert "empty file" in err
    p = _damaged(data, tmp_path, "udpos/dev-de.tsv.gz", lambda text: "\n\n")  # a valid gzip of blank lines
    assert "empty file" in str(_raises(R.read_udpos, p))


def test_real_null_label_in_training_file(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "xcopa/copa_en/train-en.jsonl", _on_line(12, _json_edit(lambda o: o.update(label=None))))
    e = _raises(R.read_copa, p)
    assert (e.line, e.field) == (12, "label")
    _fails_located(tmp_path, "copa", capsys, "train-en.jsonl:12:", "label")


def test_real_siqa_blank_label_line(data, tmp_path, capsys):
    _damaged(data, tmp_path, "siqa/dev.jsonl", lambda text: text)
    p = _damaged(data, tmp_path, "siqa/dev-labels.lst", _on_line(50, lambda line: ""))
    e = _raises(R.read_siqa, tmp_path / "data/siqa/dev.jsonl")
    assert (e.path, e.line, e.field) == (str(p), 50, "label") and "empty" in str(e)
    _fails_located(tmp_path, "siqa", capsys, "dev-labels.lst:50:", "label")


def test_real_siqa_missing_labels_file_is_named(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "siqa/dev.jsonl", lambda text: text)
    e = _raises(R.read_siqa, p)
    assert e.path == str(p.with_name("dev-labels.lst")) and "labels file not found" in str(e)
    _fails_located(tmp_path, "siqa", capsys, "dev-labels.lst:")


def test_zero_byte_gz_is_broken_not_absent(data, tmp_path, capsys):
    p = tmp_path / "data" / "udpos" / "dev-de.tsv.gz"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"")
    assert "zero-byte .gz" in str(_raises(R.read_udpos, p))
    assert "zero-byte .gz" in _fails_located(tmp_path, "udpos", capsys, "dev-de.tsv.gz:")


def test_dangling_symlink_and_loop_are_broken_not_absent(data, tmp_path, capsys):
    d = tmp_path / "data" / "xnli"
    d.mkdir(parents=True)
    (d / "dev-de.tsv").symlink_to(tmp_path / "elsewhere" / "dev-de.tsv")
    e = _raises(R.read_xnli, d / "dev-de.tsv")
    assert "broken symlink" in str(e) and e.path == str(d / "dev-de.tsv")
    assert "broken symlink" in _fails_located(tmp_path, "xnli", capsys, "dev-de.tsv:")
    (d / "dev-de.tsv").unlink()
    (d / "dev-en.tsv").symlink_to("dev-en.tsv.loop")
    (d / "dev-en.tsv.loop").symlink_to("dev-en.tsv")
    assert "symlink loop" in str(_raises(R.read_xnli, d / "dev-en.tsv"))
    assert "symlink loop" in _fails_located(tmp_path, "xnli", capsys, "dev-en.tsv")
    # a real file reached through a good symlink is present and read
    (d / "dev-en.tsv").unlink()
    (d / "dev-en.tsv.loop").unlink()
    (d / "dev-en.tsv").symlink_to(data / "xnli" / "dev-en.tsv")
    rc, _ = _data_check(tmp_path, "xnli", capsys)
    assert rc == 0 and R.file_present(d / "dev-en.tsv") and not R.file_present(d / "dev-fr.tsv")


def test_real_duplicate_question_id(data, tmp_path, capsys):
    def dup(doc):
        doc["data"][2]["paragraphs"][1]["qas"][1]["id"] = doc["data"][0]["paragraphs"][0]["qas"][0]["id"]

    p = _damaged(data, tmp_path, "xquad/xquad.de.json", _json_edit(dup))
    e = _raises(R.read_xquad, p)
    assert e.field == "data[2].paragraphs[1].qas[1].id" and "first at data[0].paragraphs[0].qas[0]" in str(e)
    st = R.ReadStats()
    assert len(R.read_xquad(p, skip_invalid=True, stats=st)) == 1189 and st.skipped == 1
    _fails_located(tmp_path, "xquad", capsys, "xquad.de.json:", "data[2].paragraphs[1].qas[1].id")


def test_tydiqa_train_ids_renamed_through_the_task(data):
    from xstilts.data import load_examples
    from xstilts.tasks import get

    train = load_examples(get("tydiqa"), "train", "en", data)
    assert len(train) == 3696 and len({e["id"] for e in train}) == 3696
    assert len(load_examples(get("tydiqa"), "dev", "sw", data)) == 499


def test_real_hellaswag_wrong_number_of_endings(data, tmp_path, capsys):
    rel = "hellaswag/hellaswag_val.jsonl.gz"
    p = _damaged(data, tmp_path, rel, _on_line(10, _json_edit(lambda o: o["endings"].pop())))
    e = _raises(R.read_hellaswag, p)
    assert (e.line, e.field) == (10, "endings") and "expected a list of 4 strings, got 3" in str(e)
    _fails_located(tmp_path, "hellaswag", capsys, "hellaswag_val.jsonl.gz:10:", "endings")
    p = _damaged(data, tmp_path, rel, _on_line(11, _json_edit(lambda o: o["endings"].append("and then?"))))
    assert (_raises(R.read_hellaswag, p).line, _raises(R.read_hellaswag, p).field) == (11, "endings")


def test_real_ner_i_after_o_is_a_located_warning(data, tmp_path, capsys):
    rel = "panx/dev-en.tsv.gz"
    lines = gzip.decompress((data / rel).read_bytes()).decode("utf-8").split("\n")
    n = next(i + 1 for i in range(50, len(lines)) if lines[i - 1].endswith("\tO") and lines[i].endswith("\tB-ORG"))
    p = _damaged(data, tmp_path, rel, _on_line(n, lambda line: line.replace("\tB-ORG", "\tI-ORG")))
    st = R.ReadStats()
    rows = R.read_panx(p, stats=st)
    assert len(rows) == 10000 and st.skipped == 0  # accepted, as seqeval accepts it
    assert st.warnings == [f"{p}:{n}: field 'tag' 'I-ORG' after 'O' does not continue an entity; it is read, as "
                           f"seqeval reads it, as the start of a new one (1 such tag(s) in this file, this is the first)"]
    rc, err = _data_check(tmp_path, "panx", capsys)
    assert rc == 0 and f"xstilts: warning: {p}:{n}: field 'tag' 'I-ORG' after 'O'" in err
    # the real Japanese file has such tags (501): one warning naming the first
    ja = R.ReadStats()
    R.read_panx(data / "panx" / "dev-ja.tsv.gz", stats=ja)
    assert len(ja.warnings) == 1 and "(501 such tag(s)" in ja.warnings[0]


def _conllu_word_line(data: Path, rel: str, k: int) -> int:
    """1-based line number of the k-th word line (integer id) of a real CoNLL-U file."""
    lines = gzip.decompress((data / rel).read_bytes()).decode("utf-8").split("\n")
    return [i + 1 for i, x in enumerate(lines) if x[:1].isdigit() and x.split("\t")[0].isdigit()][k]


@pytest.mark.parametrize("rel,task,k,edit,field,message", [
    ("ud/de_gsd-ud-test.conllu.gz", "udpos_gsd", 100, lambda x: x.rsplit("\t", 1)[0], None,
     "expected 10 tab-separated fields, got 9"),
    ("ud/en_pud-ud-test.conllu.gz", "udpos_pud", 200, _column(0, "x7"), "ID", "bad word id 'x7'"),
    ("ud/fi_tdt-ud-test.conllu.gz", "udpos_tdt", 400, _column(3, "NOUNX"), "UPOS", "unknown label 'NOUNX'"),
    ("ud/tr_imst-ud-test.conllu.gz", "udpos_imst", 60, _column(3, ""), "UPOS", "unknown label ''"),
])
def test_real_conllu_defects(data, tmp_path, capsys, rel, task, k, edit, field, message):
    n = _conllu_word_line(data, rel, k)
    p = _damaged(data, tmp_path, rel, _on_line(n, edit))
    e = _raises(R.read_conllu, p)
    assert (e.line, e.field) == (n, field) and message in str(e)
    _fails_located(tmp_path, task, capsys, f"{p.name}:{n}:", field)


def test_real_conllu_ids_out_of_order(data, tmp_path, capsys):
    rel = "ud/zh_gsd-ud-test.conllu.gz"
    n = _conllu_word_line(data, rel, 300)

    def swap(text):
        lines = text.split("\n")
        lines[n - 1], lines[n] = lines[n], lines[n - 1]
        return "\n".join(lines)

    p = _damaged(data, tmp_path, rel, swap)
    e = _raises(R.read_conllu, p)
    assert (e.line, e.field) == (n, "ID") and "out of sequence" in str(e)
    st = R.ReadStats()
    assert len(R.read_conllu(p, skip_invalid=True, stats=st)) == 499 and st.skipped == 1
    _fails_located(tmp_path, "udpos_gsd", capsys, f"{p.name}:{n}:", "ID")


def test_real_conllu_sentence_without_tokens(data, tmp_path, capsys):
    rel = "ud/ru_pud-ud-test.conllu.gz"
    text = gzip.decompress((data / rel).read_bytes()).decode("utf-8")
    blocks = text.split("\n\n")
    first = sum(b.count("\n") + 2 for b in blocks[:7]) + 1  # line where sentence 8 starts
    blocks[7] = "\n".join(x for x in blocks[7].split("\n") if x.startswith("#"))  # keep its comments only
    p = _damaged(data, tmp_path, rel, lambda _: "\n\n".join(blocks))
    e = _raises(R.read_conllu, p)
    assert e.line == first and "sentence without tokens" in str(e)
    assert p.read_bytes() and len(R.read_conllu(p, skip_invalid=True)) == 999
    _fails_located(tmp_path, "udpos_pud", capsys, f"{p.name}:{first}:")


def test_real_unterminated_quote_names_its_line(data, tmp_path, capsys):
    p = _damaged(data, tmp_path, "xnli/dev-en.tsv", _on_line(30, _column(0, '"unterminated quote')))
    e = _raises(R.read_xnli, p)
    assert e.line == 30 and "unterminated quote" in str(e)
    err = _fails_located(tmp_path, "xnli", capsys, "dev-en.tsv:30:")
    assert "unterminated quote" in err
    # the quote swallows lines 44..115 of the German PAWS-X file until a stray quote there stops the parser
    p = _damaged(data, tmp_path, "pawsx/dev-de.tsv", _on_line(44, _column(1, '"Der Anfang')))
    e = _raises(R.read_pawsx, p)
    assert e.line == 44 and "gave up at line 115" in str(e)


def test_null_label_in_a_user_multiple_choice_jsonl(data, tmp_path):
    """A user's task in the family-native JSONL layout, built from real COPA records: a null label is an error
    naming file, line and field (it used to pass through to featurization)."""
    from xstilts.data import load_examples
    from xstilts.tasks import TaskSpec

    copa = R.read_copa(data / "xcopa" / "copa_en" / "train-en.jsonl")[:20]
    copa[4]["label"] = None
    p = _jsonl(tmp_path / "train.jsonl", copa)
    spec = TaskSpec(name="my_copa", family="multiple_choice", files={"train": str(p)})
    with pytest.raises(DataError) as info:
        load_examples(spec, "train", "en", tmp_path)
    assert (info.value.line, info.value.field) == (5, "label") and "empty (None)" in str(info.value)
    st = R.ReadStats()
    assert len(load_examples(spec, "train", "en", tmp_path, skip_invalid=True, stats=st)) == 19 and st.skipped == 1
