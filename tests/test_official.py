"""Differential tests: xstilts' metrics equal the official XTREME / SQuAD scripts.

Expected values in ``tests/official/*.json`` were produced by running the
official scripts (google-research/xtreme ``evaluate.py`` and ``third_party/``,
SQuAD ``evaluate-v2.0.py``; repository and commit named in each file's
``source``) outside this repository, on cases built from the real gold data in
``../shared/data`` with perturbed predictions. The official code is not part of
xstilts; only its numbers are. Tolerance: 1e-9 on fractions.

The retrieval cases (Tatoeba, BUCC, LAReQA) embed the real sentences with stand-in
encoders whose float32 arithmetic is exact (see the retrieval section), so the official
outputs - and xstilts' bit-identical ones - do not depend on the CPU, its SIMD kernels,
the BLAS or the thread count.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xstilts import metrics as M
from xstilts.tasks.benchmarks import xtreme_score

OFFICIAL = Path(__file__).parent / "official"
TOL = 1e-9


def _official(name: str) -> dict:
    return json.loads((OFFICIAL / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- #
# XTREME / XTREME-R aggregates
# --------------------------------------------------------------------------- #


def _per_task_lang(block: dict) -> dict:
    """Official per-metric per-language percentages -> task -> lang -> {metric: fraction}."""
    out: dict = {}
    for task, metrics in block["per_task_metric_lang"].items():
        for metric, by_lang in metrics.items():
            for lang, value in by_lang.items():
                out.setdefault(task, {}).setdefault(lang, {})[metric] = value / 100
    return out


@pytest.mark.parametrize("bench", ["xtreme", "xtreme-r"])
def test_xtreme_aggregates_equal_official_evaluate_py(bench):
    block = _official("xtreme_aggregate.json")[bench]
    got = xtreme_score(_per_task_lang(block), benchmark=bench)
    for task, want in block["avg_metric"].items():
        task = "mewsli-x" if task == "mewslix" else task
        assert got["tasks"][task] == pytest.approx(want / 100, abs=TOL, rel=0), task
    for group, want in block["scores"].items():
        if group == "all_task":
            assert got["overall"] == pytest.approx(want / 100, abs=TOL, rel=0)
        else:
            assert got["categories"][group] == pytest.approx(want / 100, abs=TOL, rel=0), group
    assert got["qa_without_em"] == []
    if bench == "xtreme":  # the official overall is the mean over the 9 tasks, not over the 4 groups
        assert "all_task" in block["scores"]
        groups = [v for v in got["categories"].values()]
        assert abs(got["overall"] - sum(groups) / len(groups)) > 1e-3
    else:  # LAReQA missing -> no overall (official: no all_task either)
        assert got["overall"] is None and got["missing_tasks"] == ["lareqa"]


def test_xtreme_r_uses_catalogue_r_variants_and_full_overall():
    block = _official("xtreme_aggregate.json")["xtreme-r"]
    per = _per_task_lang(block)
    per["udpos_r"] = per.pop("udpos")
    per["panx_r"] = per.pop("panx")
    per["udpos"] = {"en": {"f1": 0.0}}  # the XTREME (33-language) task loses to udpos_r under XTREME-R
    per["lareqa"] = {"en": {"map@20": 0.5}}
    got = xtreme_score(per, benchmark="xtreme-r")
    assert got["tasks"]["udpos"] == pytest.approx(block["avg_metric"]["udpos"] / 100, abs=TOL, rel=0)
    assert got["categories"]["tagging"] == pytest.approx(block["scores"]["tagging"] / 100, abs=TOL, rel=0)
    want = (sum(block["avg_metric"].values()) / 100 + 0.5) / 10
    assert got["overall"] == pytest.approx(want, abs=TOL, rel=0)
    # under XTREME the _r variants are not XTREME tasks
    assert "udpos_r" in xtreme_score(per)["unscored_tasks"]


# --------------------------------------------------------------------------- #
# Cases built from real gold data (mirrored by the generators that ran the official code)
# --------------------------------------------------------------------------- #

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UPOS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X"]
PANX = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def _need_data():
    if not DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DATA}")


def _read_tagged(path: Path, n: int) -> list[list[str]]:
    """First ``n`` sentences' tags of an XTREME-format ``token<TAB>tag`` file."""
    import gzip

    sents, cur = [], []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if cur:
                    sents.append(cur)
                    cur = []
                    if len(sents) == n:
                        break
                continue
            cur.append(line.split("\t")[-1])
    if cur and len(sents) < n:
        sents.append(cur)
    return sents


def _perturb_tags(gold, labels, salt):
    """Deterministic wrong predictions: every 11th token shifted, CCONJ<->SCONJ swaps, sentence-final X."""
    out, g = [], 0
    for i, sent in enumerate(gold):
        pred = []
        for t in sent:
            if (g + salt) % 11 == 3:
                t = labels[(labels.index(t) + 1 + g % 5) % len(labels)]
            elif t == "CCONJ" and g % 2 == 0:
                t = "SCONJ"
            elif t == "SCONJ" and g % 2 == 0:
                t = "CCONJ"
            pred.append(t)
            g += 1
        if "X" in labels and i % 13 == salt % 13:
            pred[-1] = "X"
        out.append(pred)
    return out


@pytest.mark.parametrize("task", ["udpos", "panx"])
def test_tagging_f1_equals_official_seqeval_0012(task):
    _need_data()
    want = _official("tagging.json")["percent"][task]
    labels = UPOS if task == "udpos" else PANX
    for salt, (lang, official) in enumerate(want.items()):
        gold = _read_tagged(DATA / task / f"dev-{lang}.tsv.gz", 400)
        pred = _perturb_tags(gold, labels, salt)
        got = M.pos_prf(pred, gold) if task == "udpos" else M.tagging_f1(pred, gold)
        for key in ("f1", "precision", "recall"):
            assert got[key] == pytest.approx(official[key] / 100, abs=TOL, rel=0), (lang, key)


def test_pos_f1_differs_from_seqeval_1x_where_official_does():
    """The installed seqeval (>= 1.0) is not XTREME-compatible on UPOS: the reason pos_prf exists."""
    _need_data()
    official = _official("tagging.json")["percent"]["udpos"]["en"]["f1"] / 100
    gold = _read_tagged(DATA / "udpos" / "dev-en.tsv.gz", 400)
    pred = _perturb_tags(gold, UPOS, 0)
    assert abs(M.tagging_f1(pred, gold)["f1"] - official) > 1e-4
    assert M.pos_f1(pred, gold) == pytest.approx(official, abs=TOL, rel=0)


def test_seqeval_0012_chunks_hand_computed():
    # CCONJ and SCONJ are distinct types; a sentence-final X is a chunk; NOUN NOUN merges
    chunks = M._seqeval_0012_chunks([["NOUN", "NOUN", "CCONJ", "SCONJ", "X"], ["X"]])
    assert chunks == {("NOUN", 0, 1), ("CCONJ", 2, 2), ("SCONJ", 3, 3), ("X", 4, 4), ("X", 6, 6)}


# --------------------------------------------------------------------------- #
# Retrieval (Tatoeba, BUCC, LAReQA): stand-in encoders with exact float32 arithmetic
# --------------------------------------------------------------------------- #
# The stand-in embeddings make every float32 operation of the official scripts (and of
# xstilts) exact, so their results cannot depend on summation order, SIMD width, BLAS
# kernel or thread count, i.e. on the CPU. Every row is a deterministic function of the
# text (crc32 hashing). Tatoeba rows have entries +-2^-3 over 64 dims (+-2^-1 over 4):
# the sum of squares is exactly 1, so faiss.normalize_L2 divides by 1.0 and changes
# nothing, every dot product is a multiple of 2^-6 (2^-2) of size <= 1 and every L2
# distance 2 - 2 * dot is exact; exact ties are frequent (faiss's tie order is tested).
# BUCC rows are 64 multiples of 2^-10 whose squares sum to exactly 1 (_exact_unit_row):
# dot products are multiples of 2^-20, exact and finely graded, the kNN means are exact
# and each ratio margin is one correctly rounded division of exact operands. LAReQA rows
# are small integers (signed trigram counts) plus one coordinate that is a multiple of
# 2^-12, so every partial sum fits float32's 24-bit significand. _assert_exact_dots checks
# float32 products == float64 products, so a change that breaks exactness fails loudly;
# where numpy's argsort (an unstable, CPU-dispatched SIMD sort) meets ties, the tests
# check that the order of the ties cannot change the result.

SCALE = {64: 2.0 ** -3, 4: 2.0 ** -1}  # 1 / sqrt(dim), a power of two


def _crc_bits(text, n, salt):
    """``n`` pseudo-random bits, a function of ``text``: crc32 of (salt, block, text), 32 bits a block."""
    import zlib

    import numpy as np

    words = [zlib.crc32(f"{salt}\t{b}\t{text}".encode("utf-8")) for b in range((n + 31) // 32)]
    return np.array([(w >> i) & 1 for w in words for i in range(32)][:n], dtype=np.int64)


def _sign_vectors(texts, dim):
    """Unit rows with entries +-1/sqrt(dim) (exactly representable), signs hashed from the text."""
    import numpy as np

    s = np.float32(SCALE[dim])
    return np.stack([np.where(_crc_bits(t, dim, "sign") == 1, s, -s) for t in texts]).astype(np.float32)


def _noisy_copy(vec, text):
    """``vec`` with each sign flipped with probability 1/4, which ones a function of ``text``."""
    import numpy as np

    n = vec.shape[0]
    flip = _crc_bits(text, n, "flip-a") & _crc_bits(text, n, "flip-b")
    return np.where(flip == 1, -vec, vec).astype(np.float32)


def _assert_exact_dots(a, b, block=1000):
    """float32 dot products (BLAS, any order) equal float64 ones: the arithmetic is exact."""
    import numpy as np

    a32, b32 = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32)
    for i in range(0, a32.shape[0], block):
        f32 = a32[i:i + block] @ b32.T
        f64 = a32[i:i + block].astype(np.float64) @ b32.T.astype(np.float64)
        assert np.array_equal(f32.astype(np.float64), f64), "stand-in embeddings lost exact float32 arithmetic"


def _assert_unit_grid(emb, dim):
    """Every entry is +-1/sqrt(dim), so every row has L2 norm exactly 1 (normalize_L2 is the identity)."""
    import numpy as np

    assert emb.dtype == np.float32 and np.all(np.abs(emb) == np.float32(SCALE[dim]))
    assert np.all(np.sum(emb.astype(np.float64) ** 2, axis=1) == 1.0)


def _tatoeba_embeddings(src_texts, eng_texts, dim):
    """x = signs(src); y[i] = a noisy copy of x[i] (flips hashed from the English text)."""
    import numpy as np

    x = _sign_vectors(src_texts, dim)
    y = np.stack([_noisy_copy(x[i], t) for i, t in enumerate(eng_texts)])
    return x, y


TATOEBA_L3 = {"de": "deu", "fr": "fra", "zh": "cmn", "ar": "ara", "ja": "jpn", "sw": "swh", "jv": "jav", "tl": "tgl"}


@pytest.mark.parametrize("case,dim", [("aligned64", 64), ("ties4", 4)])
def test_tatoeba_equals_official_similarity_search(case, dim):
    import hashlib

    from xstilts.io import read_tatoeba

    _need_data()
    want = _official("tatoeba.json")["cases"][case]
    for lang, official in want.items():
        l3 = TATOEBA_L3[lang]
        d = read_tatoeba(DATA / "tatoeba" / f"tatoeba.{l3}-eng.{l3}", DATA / "tatoeba" / f"tatoeba.{l3}-eng.eng")
        x, y = _tatoeba_embeddings(d["source"], d["target"], dim)
        _assert_unit_grid(x, dim)
        _assert_unit_grid(y, dim)
        _assert_exact_dots(y, x)
        pred = M.tatoeba_predictions(x, y)
        assert hashlib.sha1(pred.astype("<i8").tobytes()).hexdigest() == official["predictions_sha1"], lang
        assert M.tatoeba_accuracy(x, y) == pytest.approx(official["accuracy"] / 100, abs=TOL, rel=0), lang
        other = M.tatoeba_accuracy(x, y, direction="src2tgt")
        assert other == pytest.approx(official["src_to_eng_accuracy_argmax"] / 100, abs=TOL, rel=0), lang


def _crc_ints(text, n, salt, half_width):
    """``n`` integers in [-half_width, half_width], a function of ``text`` (two 16-bit draws per crc32)."""
    import zlib

    words = [zlib.crc32(f"{salt}\t{b}\t{text}".encode("utf-8")) for b in range((n + 1) // 2)]
    return [((w >> sh) & 0xFFFF) % (2 * half_width + 1) - half_width for w in words for sh in (0, 16)][:n]


def _four_squares(n):
    """(a, b, c, d) with a^2 + b^2 + c^2 + d^2 == n (Lagrange), found greedily."""
    import math

    for a in range(math.isqrt(n), -1, -1):
        for b in range(math.isqrt(n - a * a), -1, -1):
            r = n - a * a - b * b
            for c in range(math.isqrt(r), -1, -1):
                d = math.isqrt(r - c * c)
                if c * c + d * d == r:
                    return a, b, c, d
    raise AssertionError(n)


def _exact_unit_row(ints, text):
    """60 integers -> a float32 row of 64 multiples of 2^-10 with L2 norm exactly 1.

    The integers are scaled (integer arithmetic) to a squared norm just under 2^20; the
    missing part is a sum of four squares written into 4 more coordinates (signs hashed
    from ``text``). Dot products of such rows are multiples of 2^-20 of size <= 1: exact in
    float32, yet finely graded, so margins rarely tie.
    """
    import math

    import numpy as np

    c = math.isqrt(sum(v * v for v in ints)) + 1
    e = [(abs(v) << 10) // c * (1 if v >= 0 else -1) for v in ints]
    fix = _four_squares((1 << 20) - sum(v * v for v in e))
    signs = _crc_ints(text, 4, "fix-sign", 1)
    e += [f * (-1 if s < 0 else 1) for f, s in zip(fix, signs)]
    return (np.array(e, dtype=np.float64) / 1024).astype(np.float32)


def _bucc_embeddings(zh_texts, en_texts, gold_text_pairs, noise=500):
    """Stand-in aligned encoder, a function of the text, on exact unit rows (``_exact_unit_row``):
    zh = hashed integers of the zh text; an English gold sentence = its (first, sorted) gold
    partner's integers plus hashed noise of the English text; other en = hashed integers of the text."""
    import numpy as np

    partners: dict = {}
    for z, e in gold_text_pairs:
        partners.setdefault(e, set()).add(z)
    x = np.stack([_exact_unit_row(_crc_ints(t, 60, "vec", 1000), t) for t in zh_texts])
    y = []
    for e in en_texts:
        zs = sorted(partners.get(e, ()))
        if zs:
            ints = [a + b for a, b in zip(_crc_ints(zs[0], 60, "vec", 1000), _crc_ints(e, 60, "noise", noise))]
        else:
            ints = _crc_ints(e, 60, "vec", 1000)
        y.append(_exact_unit_row(ints, e))
    return x, np.stack(y)


def _assert_exact_unit_rows(emb):
    """Entries on the 2^-10 grid and squared L2 norm exactly 1 (normalize_L2 is the identity)."""
    import numpy as np

    assert emb.dtype == np.float32 and np.all(emb * 1024 == np.round(emb * 1024))
    assert np.all(np.sum(emb.astype(np.float64) ** 2, axis=1) == 1.0)


def _bucc_case():
    from xstilts.io import read_bucc

    b = DATA / "bucc2018"
    d = read_bucc(b / "zh-en.dev.zh", b / "zh-en.dev.en", b / "zh-en.dev.gold")
    sid, tid = list(d["source"]), list(d["target"])
    stext, ttext = [d["source"][i] for i in sid], [d["target"][i] for i in tid]
    x, y = _bucc_embeddings(stext, ttext, [(d["source"][s], d["target"][t]) for s, t in d["gold"]])
    return d, sid, tid, stext, ttext, x, y


def test_bucc_mining_threshold_f1_equal_official():
    import hashlib

    _need_data()
    want = _official("bucc.json")["official"]
    d, sid, tid, stext, ttext, x, y = _bucc_case()
    _assert_exact_unit_rows(x)
    _assert_exact_unit_rows(y)
    _assert_exact_dots(x, y)
    pairs = M.bucc_mine(x, y, sid, tid, k=4, mode="max", src_texts=stext, tgt_texts=ttext)
    assert len(pairs) == want["n_candidates_with_ids"]
    digest = hashlib.sha1(json.dumps(sorted([s, t, repr(v)] for s, t, v in pairs)).encode()).hexdigest()
    assert digest == want["candidate2score_sha1"]  # same pairs, bit-identical margins
    threshold, f1 = M.bucc_best_threshold(pairs, d["gold"])
    official = want["bucc_eval"]
    assert threshold == pytest.approx(official["best-threshold"], abs=TOL, rel=0)
    got = M.bucc_f1(pairs, d["gold"], threshold)
    for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "F1")):
        assert got[key] == pytest.approx(official[name] / 100, abs=TOL, rel=0), key
    assert f1 == got["f1"]


def test_bucc_mining_does_not_depend_on_the_order_of_tied_scores(monkeypatch):
    """LASER's ``np.argsort(-scores)`` is unstable (its SIMD kernel depends on the CPU): every
    order of exactly tied margins mines the same pairs here, so the expectation is CPU-independent."""
    import numpy as np

    _need_data()
    _, sid, tid, stext, ttext, x, y = _bucc_case()
    argsort = np.argsort

    def mine(order):
        def patched(a, *args, **kwargs):
            a = np.asarray(a)
            if order == "first":  # ties: lowest index first
                return argsort(a, kind="stable")
            return a.shape[0] - 1 - argsort(a[::-1], kind="stable")  # ties: highest index first

        with monkeypatch.context() as m:
            m.setattr(np, "argsort", patched)
            return sorted(M.bucc_mine(x, y, sid, tid, k=4, mode="max", src_texts=stext, tgt_texts=ttext))

    default = sorted(M.bucc_mine(x, y, sid, tid, k=4, mode="max", src_texts=stext, tgt_texts=ttext))
    assert mine("first") == default and mine("last") == default


# --------------------------------------------------------------------------- #
# QA: SQuAD v1.1 (XQuAD, TyDiQA), MLQA, SQuAD v2.0
# --------------------------------------------------------------------------- #


def _qa_predictions(data, missing_every=17, v2=False):
    """Deterministic perturbed predictions for a SQuAD-format ``data`` list."""
    preds, q = {}, 0
    for art in data:
        for p in art["paragraphs"]:
            ctx = p["context"]
            for qa in p["qas"]:
                a = qa["answers"][0]["text"] if qa["answers"] else ""
                s = qa["answers"][0]["answer_start"] if qa["answers"] else 0
                m = q % 6
                q += 1
                if missing_every and (q - 1) % missing_every == 0:
                    continue
                if v2 and not qa["answers"]:
                    preds[qa["id"]] = "" if (q // 4) % 2 == 0 else ctx[:15]
                    continue
                if m == 0:
                    pred = a
                elif m == 1:
                    pred = " ".join(a.split()[1:]) or a
                elif m == 2:
                    pred = "The " + a + "."
                elif m == 3:
                    pred = ctx[max(0, s - 12): s + len(a)]
                elif m == 4:
                    pred = ctx[s + len(a): s + len(a) + 20]
                else:
                    pred = a.upper() + " ," if not v2 else ""
                preds[qa["id"]] = pred
    return preds


def _make_v2(data):
    """Every 4th question unanswerable (answers emptied)."""
    import copy

    data, q = copy.deepcopy(data), 0
    for art in data:
        for p in art["paragraphs"]:
            for qa in p["qas"]:
                if q % 4 == 1:
                    qa["answers"] = []
                q += 1
    return data


def _na_probs_for(data):
    """Tied no-answer probabilities (multiples of 0.1), listed in REVERSE question order."""
    qids = [qa["id"] for art in data for p in art["paragraphs"] for qa in p["qas"]]
    return {qid: round(((i * 37) % 10) / 10, 1) for i, qid in reversed(list(enumerate(qids)))}


def _references(data):
    return {qa["id"]: [a["text"] for a in qa["answers"]] for art in data for p in art["paragraphs"] for qa in p["qas"]}


QA_FILES = {"xquad.de": "xquad/xquad.de.json", "xquad.zh": "xquad/xquad.zh.json", "xquad.ar": "xquad/xquad.ar.json",
            "tydiqa.fi": "tydiqa/dev/tydiqa.goldp.fi.dev.json", "tydiqa.ko": "tydiqa/dev/tydiqa.goldp.ko.dev.json"}


def _load_data(rel):
    return json.loads((DATA / rel).read_text(encoding="utf-8"))["data"]


def test_squad_v1_and_mlqa_equal_official():
    _need_data()
    want = _official("qa.json")["official"]
    for name, rel in QA_FILES.items():
        data = _load_data(rel)
        got = M.squad_v1(_qa_predictions(data), _references(data))
        for key in ("exact_match", "f1"):
            assert got[key] == pytest.approx(want["squad_v1"][name][key] / 100, abs=TOL, rel=0), (name, key)
    for lang, official in want["mlqa"].items():
        data = _load_data(f"mlqa/dev/dev-context-{lang}-question-{lang}.json")
        got = M.mlqa(_qa_predictions(data), _references(data), lang)
        for key in ("exact_match", "f1"):
            assert got[key] == pytest.approx(official[key] / 100, abs=TOL, rel=0), (lang, key)


@pytest.mark.parametrize("src", ["en", "de"])
def test_squad_v2_equals_official_evaluate_v2(src):
    _need_data()
    want = _official("qa.json")["official"]["squad_v2"]
    data = _make_v2(_load_data(f"xquad/xquad.{src}.json"))
    preds, refs, na = _qa_predictions(data, missing_every=0, v2=True), _references(data), _na_probs_for(data)
    for thresh in (1.0, 0.45):
        official = want[f"xquad.{src}@{thresh}"]
        got = M.squad_v2(preds, refs, na_probs=na, na_prob_thresh=thresh)
        for key, value in official.items():
            if key.endswith("total") or key.endswith("_thresh"):
                assert got[key] == value, key
            else:
                assert got[key] == pytest.approx(value / 100, abs=TOL, rel=0), (thresh, key)


def test_squad_v2_best_threshold_ties_follow_the_na_probs_order():
    """evaluate-v2.0.py keeps its na_prob file's order among tied probabilities; so does xstilts."""
    _need_data()
    official = _official("qa.json")["official"]["squad_v2"]["xquad.en@1.0"]
    data = _make_v2(_load_data("xquad/xquad.en.json"))
    preds, refs, na = _qa_predictions(data, missing_every=0, v2=True), _references(data), _na_probs_for(data)
    in_question_order = {q: na[q] for q in refs}  # same probabilities, other order among ties
    got = M.squad_v2(preds, refs, na_probs=in_question_order)
    assert abs(got["best_exact"] - official["best_exact"] / 100) > 1e-4
    assert M.squad_v2(preds, refs, na_probs=na)["best_exact"] == pytest.approx(official["best_exact"] / 100,
                                                                               abs=TOL, rel=0)


def test_squad_v2_missing_question_scores_zero_documented_deviation():
    """The official script fails (KeyError) on a prediction file missing questions; xstilts scores them 0."""
    refs = {"q1": ["Paris"], "q2": []}
    got = M.squad_v2({"q1": "Paris"}, refs)
    assert got["total"] == 2 and got["exact"] == 0.5 and got["NoAns_exact"] == 0.0
    assert "Deviation" in M.squad_v2.__doc__ and "KeyError" in M.squad_v2.__doc__


# --------------------------------------------------------------------------- #
# Accuracy and mAP@20
# --------------------------------------------------------------------------- #


def test_accuracy_equals_official():
    import csv

    _need_data()
    want = _official("accuracy_lareqa.json")["official"]["accuracy"]
    for name, rel in (("xnli.test-de", "xnli/test-de.tsv"), ("pawsx.test-zh", "pawsx/test-zh.tsv")):
        with open(DATA / rel, newline="", encoding="utf-8") as f:
            labels = [r[2] for r in csv.reader(f, delimiter="\t")]
        vocab = sorted(set(labels))
        preds = [vocab[(vocab.index(g) + 1) % len(vocab)] if i % 7 in (1, 4) else g for i, g in enumerate(labels)]
        assert M.accuracy(preds, labels) == pytest.approx(want[name] / 100, abs=TOL, rel=0), name


def _lareqa_case(langs=("de", "zh", "ar")):
    from xstilts.io import read_xquad_r

    pool, relevant, questions = [], {}, {}
    for lang in langs:
        d = read_xquad_r(DATA / "lareqa" / "xquad-r" / f"{lang}.json.gz", id_prefix=f"{lang}:")
        pool += d["sentences"]
        for q in d["questions"]:
            relevant.setdefault(q["id"], set()).update(q["answer_sentence_ids"])
        questions[lang] = d["questions"]
    return pool, relevant, questions


def _lareqa_vectors(texts, tie_keys=None, dim=64):
    """Signed feature hashing of character trigrams as small-integer counts (not normalised), plus
    one coordinate: 1 for a question (``tie_keys`` None), else a multiple of 2^-12 hashed from the
    candidate's key (sentence and context: it breaks the ties of the integer part). Dot products
    are exact in float32 (partial sums stay far below 2^11)."""
    import zlib

    import numpy as np

    out = np.zeros((len(texts), dim + 1), dtype=np.float32)
    for i, t in enumerate(texts):
        s = f"  {t.lower()}  "
        for j in range(len(s) - 2):
            h = zlib.crc32(s[j:j + 3].encode("utf-8"))
            out[i, h % dim] += 1.0 if (h >> 20) & 1 else -1.0
        out[i, dim] = 1.0 if tie_keys is None else (zlib.crc32(f"tie\t{tie_keys[i]}".encode("utf-8")) % 4096) / 4096
    return out


def _assert_ties_cannot_matter(query, cand, relevant_rows, k=20):
    """No relevant candidate ranked in the top ``k`` ties exactly with a non-relevant one, so AP@k
    does not depend on how ``argsort`` orders ties (its SIMD kernel depends on the CPU)."""
    import numpy as np

    scores = query.astype(np.float64) @ cand.astype(np.float64).T
    for s, rel in zip(scores, relevant_rows):
        top = s >= np.partition(s, -k)[-k]
        is_rel = np.zeros(s.shape[0], dtype=bool)
        is_rel[list(rel)] = True
        assert np.intersect1d(s[top & is_rel], s[top & ~is_rel]).size == 0


def test_map_at_20_equals_official_lareqa():
    """mAP@20 on the official ranking (numpy argsort of the dot products, reversed) of real XQuAD-R."""
    _need_data()
    want = _official("accuracy_lareqa.json")["official"]["lareqa"]
    pool, relevant, questions = _lareqa_case()
    cand = _lareqa_vectors([s["text"] for s in pool], [f"{s['text']}\t{s['context']}" for s in pool])
    ids = [s["id"] for s in pool]
    pos = {c: j for j, c in enumerate(ids)}
    for lang, official in want.items():
        query = _lareqa_vectors([q["question"] for q in questions[lang]])
        rel = [relevant[q["id"]] for q in questions[lang]]
        _assert_exact_dots(query, cand)
        _assert_ties_cannot_matter(query, cand, [{pos[c] for c in r} for r in rel])
        # ranked as given (the official code does not normalise); normalising would make the
        # arithmetic inexact
        top = M.lareqa_rankings(query, cand, 20, normalize=False)
        got = M.map_at_k([[ids[j] for j in row] for row in top], rel, k=20)
        assert got == pytest.approx(official / 100, abs=TOL, rel=0), lang
