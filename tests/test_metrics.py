"""Tests for xstilts.metrics against hand-computed values.

Every expected number is derived by hand in the comment next to it.
"""

from __future__ import annotations

import numpy as np
import pytest

from xstilts import metrics as M
from xstilts.tasks.benchmarks import xtreme_score
from xstilts.errors import XstiltsError

approx = pytest.approx


# --------------------------------------------------------------------------- #
# accuracy
# --------------------------------------------------------------------------- #


def test_accuracy_fraction():
    # positions 0 and 2 agree -> 2 / 4
    assert M.accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == approx(0.5)
    # numpy input, strings: 2 of 3 agree
    assert M.accuracy(np.array(["a", "b", "c"]), ["a", "x", "c"]) == approx(2 / 3)


def test_accuracy_errors():
    with pytest.raises(XstiltsError):
        M.accuracy([1, 2], [1])
    with pytest.raises(XstiltsError):
        M.accuracy([], [])


# --------------------------------------------------------------------------- #
# SQuAD v1.1
# --------------------------------------------------------------------------- #


def test_normalize_squad_answer():
    # lower -> drop "!" and "," -> drop "the" -> collapse spaces
    assert M.normalize_squad_answer("The  Eiffel, Tower!") == "eiffel tower"
    # article removal is word-bounded: "theatre" and "another" stay
    assert M.normalize_squad_answer("another theatre") == "another theatre"
    # "«" is not ASCII punctuation, so SQuAD keeps it
    assert M.normalize_squad_answer("«hello»") == "«hello»"


def test_squad_v1_hand_computed():
    refs = {
        "q1": ["Eiffel tower", "tower"],
        "q2": ["Paris"],
        "q3": ["Berlin"],
        "q4": ["apple day", "a banana"],
        "q5": ["cat dog dog"],
    }
    preds = {
        "q1": "The Eiffel Tower!",  # -> "eiffel tower" == gold 1: EM 1, F1 1
        "q2": "in Paris, France",  # tokens [in, paris, france] vs [paris]: P=1/3 R=1 F1=0.5; EM 0
        # q3 missing -> EM 0, F1 0 (still counted)
        "q4": "an apple a day",  # -> "apple day" == gold 1: EM 1, F1 1
        "q5": "cat cat dog",  # common = min(2,1) cat + min(1,2) dog = 2; P=2/3 R=2/3 F1=2/3; EM 0
        "extra": "ignored",  # not in references -> ignored
    }
    out = M.squad_v1(preds, refs)
    # EM = (1 + 0 + 0 + 1 + 0) / 5 = 0.4
    assert out["exact_match"] == approx(0.4)
    # F1 = (1 + 0.5 + 0 + 1 + 2/3) / 5 = (19/6) / 5 = 19/30
    assert out["f1"] == approx(19 / 30)


def test_squad_v1_max_over_golds_and_no_overlap():
    # gold "red car": pred [big, red, car] -> P=2/3 R=1 F1=0.8
    # gold "big red car": exact -> F1 1, EM 1 -> max is 1 / 1
    out = M.squad_v1({"q": "big red car"}, {"q": ["red car", "Big red car."]})
    assert out == {"exact_match": approx(1.0), "f1": approx(1.0)}
    # no common token -> F1 0
    assert M.squad_v1({"q": "dog"}, {"q": ["cat"]})["f1"] == 0.0


def test_squad_v1_errors():
    with pytest.raises(XstiltsError):
        M.squad_v1({}, {})
    with pytest.raises(XstiltsError):
        M.squad_v1({"q": "x"}, {"q": []})


# --------------------------------------------------------------------------- #
# SQuAD v2.0
# --------------------------------------------------------------------------- #

V2_REFS = {
    "a": ["Paris"],  # has answer
    "b": ["Paris"],  # has answer
    "c": [],  # no answer -> gold [""]
    "d": [],  # no answer
    "e": ["big red car"],  # has answer
}
V2_PREDS = {
    "a": "Paris",  # exact 1, f1 1
    "b": "",  # no-answer vs "paris": exact 0, f1 0
    "c": "",  # "" vs "": exact 1, f1 1
    "d": "London",  # "london" vs "": exact 0, f1 0 (pred non-empty, gold empty)
    "e": "red car",  # exact 0; P=2/2 R=2/3 -> F1 = 2*(2/3)/(5/3) = 0.8
}


def test_squad_v2_hand_computed():
    out = M.squad_v2(V2_PREDS, V2_REFS)
    assert out["exact"] == approx(2 / 5)  # (1+0+1+0+0)/5
    assert out["f1"] == approx(2.8 / 5)  # (1+0+1+0+0.8)/5 = 0.56
    assert out["total"] == 5
    assert out["HasAns_exact"] == approx(1 / 3)  # a,b,e: (1+0+0)/3
    assert out["HasAns_f1"] == approx(0.6)  # (1+0+0.8)/3
    assert out["HasAns_total"] == 3
    assert out["NoAns_exact"] == approx(0.5)  # c,d: (1+0)/2
    assert out["NoAns_f1"] == approx(0.5)
    assert out["NoAns_total"] == 2
    assert "best_f1" not in out


def test_squad_v2_no_answer_edge_cases():
    # Gold "the" normalises to "" and is dropped -> gold [""], but the question
    # still counts as HasAns (official make_qid_to_has_ans uses the raw list).
    # Pred "The" normalises to "" too -> exact 1, f1 1 (both empty).
    out = M.squad_v2({"q": "The"}, {"q": ["the"]})
    assert out["exact"] == 1.0 and out["f1"] == 1.0
    assert out["HasAns_total"] == 1 and out["HasAns_f1"] == 1.0
    # empty subset -> None
    assert out["NoAns_exact"] is None and out["NoAns_f1"] is None
    # missing prediction on an unanswerable question scores 0 (documented choice)
    out = M.squad_v2({}, {"q": []})
    assert out["exact"] == 0.0 and out["NoAns_f1"] == 0.0


def test_squad_v2_na_prob_threshold_and_best_threshold():
    refs = {"h1": ["Paris"], "h2": ["Paris"], "n1": [], "n2": []}
    preds = {"h1": "Paris", "h2": "London", "n1": "Berlin", "n2": "Rome"}
    na = {"h1": 0.1, "h2": 0.6, "n1": 0.3, "n2": 0.9}
    # raw exact: h1 1, h2 0, n1 0, n2 0.
    # thresh 0.5: na > 0.5 for h2 (-> not has_ans = 0) and n2 (-> 1).
    out = M.squad_v2(preds, refs, na_probs=na, na_prob_thresh=0.5)
    assert out["exact"] == approx(0.5)  # (1 + 0 + 0 + 1) / 4
    assert out["HasAns_exact"] == approx(0.5)  # h1 1, h2 0
    assert out["NoAns_exact"] == approx(0.5)  # n1 0, n2 1
    # best threshold sweep: start = #no-ans = 2; by na ascending:
    # h1 (0.1): +1 -> 3 (new best, thresh 0.1); n1 (0.3): pred non-empty -> -1 -> 2;
    # h2 (0.6): +0 -> 2; n2 (0.9): -1 -> 1.  best = 3/4 at 0.1
    assert out["best_exact"] == approx(0.75)
    assert out["best_exact_thresh"] == approx(0.1)
    assert out["best_f1"] == approx(0.75)  # f1 raw scores equal exact ones here
    assert out["best_f1_thresh"] == approx(0.1)


# --------------------------------------------------------------------------- #
# MLQA
# --------------------------------------------------------------------------- #


def test_mlqa_normalisation_per_language():
    # de: lower -> "der hund" -> article "der" removed -> "hund"
    assert M.normalize_mlqa_answer("Der Hund", "de") == "hund"
    # de: \b keeps "derby" (article only as whole word)
    assert M.normalize_mlqa_answer("Derby", "de") == "derby"
    # es: "los perros" -> "perros"
    assert M.normalize_mlqa_answer("los perros", "es") == "perros"
    # vi: "của tôi" -> "tôi"
    assert M.normalize_mlqa_answer("Của tôi", "vi") == "tôi"
    # ar: "ال" replaced by a space -> " كتاب" -> "كتاب"
    assert M.normalize_mlqa_answer("الكتاب", "ar") == "كتاب"
    # ar quirk of the official regex: 'ال' is removed inside words too:
    # "جمال" = ج م ا ل -> "جم" + " " -> "جم"
    assert M.normalize_mlqa_answer("جمال", "ar") == "جم"
    # hi: Devanagari danda "।" (category Po) removed; no articles
    assert M.normalize_mlqa_answer("भारत।", "hi") == "भारत"
    assert M.normalize_mlqa_answer("the cat", "hi") == "the cat"
    # zh: each CJK char its own token, ASCII runs kept, "。" removed
    assert M.normalize_mlqa_answer("2008年北京。", "zh") == "2008 年 北 京"
    assert M.mlqa_tokens("iPhone手机", "zh") == ["iphone", "手", "机"]
    # en: unicode punctuation « » (Pi/Pf) removed, unlike SQuAD
    assert M.normalize_mlqa_answer("«The hello»", "en") == "hello"


def test_mlqa_exact_match_cases():
    refs = {
        "de": (["Hund"], "de", "Der Hund"),  # "hund" == "hund"
        "es": (["perros"], "es", "los perros"),  # "perros" == "perros"
        "ar": (["كتاب"], "ar", "الكتاب"),  # "كتاب" == "كتاب"
        "vi": (["tôi"], "vi", "của tôi"),  # "tôi" == "tôi"
        "hi": (["भारत"], "hi", "भारत।"),  # danda removed
        "zh": (["北京"], "zh", "北京。"),  # "北 京" == "北 京"
    }
    for qid, (golds, lang, pred) in refs.items():
        out = M.mlqa({qid: pred}, {qid: golds}, lang)
        assert out == {"exact_match": 1.0, "f1": 1.0}, qid


def test_mlqa_f1_hand_computed():
    # zh: pred [北,京,大,学] gold [北,京]: P=2/4 R=2/2 F1=2*(1/2)/(3/2)=2/3; EM 0
    assert M.mlqa({"q": "北京大学"}, {"q": ["北京"]}, "zh") == {
        "exact_match": 0.0,
        "f1": approx(2 / 3),
    }
    # zh mixed: pred [2008, 年] gold [2008, 年, 北, 京]: P=1 R=1/2 F1=2/3
    assert M.mlqa({"q": "2008年"}, {"q": ["2008年北京"]}, "zh")["f1"] == approx(2 / 3)
    # es: pred "el perro grande" -> [perro, grande] vs [perro]: P=1/2 R=1 F1=2/3
    assert M.mlqa({"q": "el perro grande"}, {"q": ["perro"]}, "es")["f1"] == approx(2 / 3)
    # ar: "الكتاب الجديد" -> [كتاب, جديد] vs [كتاب]: F1 = 2/3
    assert M.mlqa({"q": "الكتاب الجديد"}, {"q": ["كتاب"]}, "ar")["f1"] == approx(2 / 3)
    # hi keeps "the": [the, cat] vs [cat]: F1 2/3, EM 0; en drops it: EM 1
    assert M.mlqa({"q": "the cat"}, {"q": ["cat"]}, "hi") == {"exact_match": 0.0, "f1": approx(2 / 3)}
    assert M.mlqa({"q": "the cat"}, {"q": ["cat"]}, "en") == {"exact_match": 1.0, "f1": 1.0}


def test_mlqa_vs_squad_unicode_punctuation():
    # « » are not in string.punctuation: SQuAD EM 0, MLQA (en) EM 1
    assert M.squad_v1({"q": "«hello»"}, {"q": ["hello"]})["exact_match"] == 0.0
    assert M.mlqa({"q": "«hello»"}, {"q": ["hello"]}, "en")["exact_match"] == 1.0


def test_mlqa_aggregate_and_missing():
    refs = {"q1": ["Der Hund"], "q2": ["die Katze", "Katze"], "q3": ["Maus"]}
    preds = {"q1": "Hund", "q2": "eine schwarze Katze"}  # q3 missing
    # q1: EM 1, F1 1
    # q2: [schwarze, katze] vs [katze]: P=1/2 R=1 F1=2/3; EM 0
    # q3: 0 / 0
    out = M.mlqa(preds, refs, "de")
    assert out["exact_match"] == approx(1 / 3)  # (1+0+0)/3
    assert out["f1"] == approx((1 + 2 / 3) / 3)  # 5/9


def test_mlqa_unknown_language():
    with pytest.raises(XstiltsError):
        M.mlqa({"q": "x"}, {"q": ["x"]}, "fr")


# --------------------------------------------------------------------------- #
# Tagging
# --------------------------------------------------------------------------- #


def test_tagging_f1_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    # gold chunks: PER(0-1), LOC(3), ORG(s2 0) -> 3
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # pred chunks: PER(0-1), ORG(3), ORG(s2 0) -> 3, correct 2 -> P=R=F1=2/3
    assert M.tagging_f1(pred, gold) == approx({"f1": 2 / 3, "precision": 2 / 3, "recall": 2 / 3})
    pred2 = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]]
    # 2 predicted chunks, both correct: P=1, R=2/3, F1=2*(2/3)/(5/3)=0.8
    assert M.tagging_f1(pred2, gold) == approx({"f1": 0.8, "precision": 1.0, "recall": 2 / 3})


def test_tagging_f1_default_mode_is_lenient():
    # default (non-strict) seqeval: "I-PER I-PER" is the chunk PER(0-1), same as
    # "B-PER I-PER" -> F1 1 (strict IOB2 mode would reject the gold chunk).
    assert M.tagging_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])["f1"] == 1.0


def test_tagging_shape_errors():
    with pytest.raises(XstiltsError):
        M.tagging_f1([["O"]], [["O", "O"]])
    with pytest.raises(XstiltsError):
        M.pos_accuracy([["NOUN"]], [])


def test_pos_f1_differs_from_accuracy():
    gold = [["NOUN", "NOUN", "VERB"]]
    pred = [["NOUN", "VERB", "VERB"]]
    # accuracy: tokens 0 and 2 right -> 2/3
    assert M.pos_accuracy(pred, gold) == approx(2 / 3)
    # seqeval on raw UPOS: equal adjacent tags merge into one chunk.
    # gold chunks {NOUN(0-1), VERB(2)}, pred chunks {NOUN(0), VERB(1-2)} -> 0 correct
    assert M.pos_f1(pred, gold) == 0.0
    assert M.tagging_f1(pred, gold) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_pos_f1_equals_accuracy_without_adjacent_repeats():
    gold = [["DET", "NOUN", "VERB"], ["PRON", "AUX"]]
    pred = [["DET", "ADJ", "VERB"], ["PRON", "VERB"]]
    # accuracy: 3 of 5 tokens right
    assert M.pos_accuracy(pred, gold) == approx(3 / 5)
    # all chunks are single tokens: 5 gold, 5 pred, 3 correct -> P=R=F1=3/5
    assert M.pos_f1(pred, gold) == approx(0.6)
    assert M.tagging_f1(pred, gold) == approx({"f1": 0.6, "precision": 0.6, "recall": 0.6})


# --------------------------------------------------------------------------- #
# BUCC mining
# --------------------------------------------------------------------------- #


def test_bucc_mine_modes_hand_computed():
    # src: a=(1,0,0), b=(0,1,0); tgt: A=(1,0,0), B=(0.8,0.6,0).  k=1.
    # cos: a.A=1, a.B=0.8, b.A=0, b.B=0.6
    # fwd 1-NN means: a -> 1 (A), b -> 0.6 (B); bwd: A -> 1 (a), B -> 0.8 (a)
    # margins of the 1-NN candidates:
    #   fwd a->A: 1 / ((1+1)/2) = 1;   fwd b->B: 0.6 / ((0.6+0.8)/2) = 6/7
    #   bwd A->a: 1;                    bwd B->a: 0.8 / ((1+0.8)/2) = 8/9
    src = [[1, 0, 0], [0, 1, 0]]
    tgt = [[1, 0, 0], [0.8, 0.6, 0]]
    ids_s, ids_t = ["a", "b"], ["A", "B"]

    def mine(mode):
        return [(s, t, approx(v, abs=1e-6)) for s, t, v in M.bucc_mine(src, tgt, ids_s, ids_t, k=1, mode=mode)]

    assert mine("forward") == [("a", "A", 1.0), ("b", "B", 6 / 7)]
    assert mine("backward") == [("a", "A", 1.0), ("a", "B", 8 / 9)]
    # intersection: a->A and A->a agree; b->B but B->a -> dropped
    assert mine("intersection") == [("a", "A", 1.0)]
    # max: sorted candidates 1 (a,A) x2, 8/9 (a,B), 6/7 (b,B); greedy keeps
    # (a,A), skips (a,B) because a is used, keeps (b,B)
    assert mine("max") == [("a", "A", 1.0), ("b", "B", 6 / 7)]
    # aliases
    assert mine("fwd") == mine("forward") and mine("intersect") == mine("intersection")


def test_bucc_mine_max_drops_non_positive_scores():
    # src a=(1,0,0), b=(-0.6,0,0.8); tgt A=(1,0,0), B=(0.8,0.6,0); k=1
    # cos: a.A=1, a.B=0.8, b.A=-0.6, b.B=-0.48 -> a->A, b->B; A->a, B->a
    # means: fwd a=1, b=-0.48; bwd A=1, B=0.8
    # fwd b->B: -0.48 / ((-0.48 + 0.8)/2) = -0.48/0.16 = -3
    # bwd B->a: 0.8 / ((1 + 0.8)/2) = 8/9
    src = [[1, 0, 0], [-0.6, 0, 0.8]]
    tgt = [[1, 0, 0], [0.8, 0.6, 0]]
    fwd = M.bucc_mine(src, tgt, ["a", "b"], ["A", "B"], k=1, mode="forward")
    assert fwd == [("a", "A", approx(1.0, abs=1e-6)), ("b", "B", approx(-3.0, abs=1e-5))]
    # max: (a,A) 1 kept; (a,B) 8/9 skipped (a used); (b,B) -3 is new but, as in
    # LASER, only scores > 0 are emitted
    mx = M.bucc_mine(src, tgt, ["a", "b"], ["A", "B"], k=1, mode="max")
    assert [(s, t) for s, t, _ in mx] == [("a", "A")]


def test_bucc_mine_k2_hand_computed():
    # src x0=(1,0), x1=(0,1); tgt y0=(0.8,0.6), y1=(0.6,0.8), y2=(0,1); k=2
    # cos rows: x0: [.8,.6,0]  x1: [.6,.8,1]
    # fwd means: x0 (.8+.6)/2=.7, x1 (1+.8)/2=.9; bwd means: y0 .7, y1 .7, y2 (1+0)/2=.5
    # x0 cands y0,y1: .8/.7=8/7, .6/.7=6/7 -> y0 (8/7)
    # x1 cands y2,y1: 1/((.9+.5)/2)=10/7, .8/((.9+.7)/2)=1 -> y2 (10/7)
    # y0 cands x0,x1: 8/7, .6/.8=.75 -> x0; y1 cands x1,x0: 1, 6/7 -> x1; y2 cands x1,x0: 10/7, 0 -> x1
    src = np.array([[1, 0], [0, 1]], dtype=np.float32)
    tgt = np.array([[0.8, 0.6], [0.6, 0.8], [0, 1]], dtype=np.float32)
    fwd = M.bucc_mine(src, tgt, [0, 1], [0, 1, 2], k=2, mode="forward")
    assert fwd == [(0, 0, approx(8 / 7, abs=1e-6)), (1, 2, approx(10 / 7, abs=1e-6))]
    bwd = M.bucc_mine(src, tgt, [0, 1], [0, 1, 2], k=2, mode="backward")
    assert bwd == [(0, 0, approx(8 / 7, abs=1e-6)), (1, 1, approx(1.0, abs=1e-6)), (1, 2, approx(10 / 7, abs=1e-6))]
    # max: 10/7 (1,2), 8/7 (0,0), then (1,1) rejected since src 1 is used
    mx = M.bucc_mine(src, tgt, [0, 1], [0, 1, 2], k=2, mode="max")
    assert [(s, t) for s, t, _ in mx] == [(1, 2), (0, 0)]
    # k larger than the collections is capped (LASER min(k, n)): k=4 == k=2 here for src side
    assert M.bucc_mine(src, tgt, [0, 1], [0, 1, 2], k=4, mode="forward")[0][1] == 0


def test_bucc_margin_matches_manual_numpy_3x3():
    src = np.array([[1.0, 0.2, 0.1], [0.1, 1.0, 0.3], [0.4, 0.3, 1.0]])
    tgt = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1], [0.5, 0.6, 0.9]])
    k = 2
    xs = src / np.linalg.norm(src, axis=1, keepdims=True)
    ys = tgt / np.linalg.norm(tgt, axis=1, keepdims=True)
    cos = xs @ ys.T
    fwd_mean = np.sort(cos, axis=1)[:, -k:].mean(axis=1)  # sum of k-NN cos / k
    bwd_mean = np.sort(cos, axis=0)[-k:, :].mean(axis=0)
    margin = cos / (fwd_mean[:, None] / 2 + bwd_mean[None, :] / 2)
    out = M.bucc_mine(src, tgt, ["s0", "s1", "s2"], ["t0", "t1", "t2"], k=k, mode="forward")
    for i, (s, t, score) in enumerate(out):
        cands = np.argsort(-cos[i])[:k]  # forward candidates: k nearest targets
        j = cands[np.argmax(margin[i, cands])]
        assert (s, t) == (f"s{i}", f"t{j}")
        assert score == approx(margin[i, j], abs=1e-5)


def test_bucc_mine_errors():
    with pytest.raises(XstiltsError):
        M.bucc_mine([[1, 0]], [[1, 0]], ["a"], ["A"], mode="union")
    with pytest.raises(XstiltsError):
        M.bucc_mine([[1, 0]], [[1, 0]], ["a", "b"], ["A"])
    with pytest.raises(XstiltsError):
        M.bucc_mine([[1, 0]], [[1, 0, 0]], ["a"], ["A"])


# --------------------------------------------------------------------------- #
# BUCC threshold / F1
# --------------------------------------------------------------------------- #

DEV_CANDS = [
    ("s1", "t1", 1.5),  # gold
    ("s2", "t2", 1.4),  # gold
    ("s3", "t9", 1.3),
    ("s4", "t4", 1.2),  # gold
    ("s5", "t8", 1.1),
    ("s6", "t7", 1.0),
]
DEV_GOLD = [("s1", "t1"), ("s2", "t2"), ("s4", "t4"), ("s7", "t7")]  # 4 gold pairs


def test_bucc_best_threshold_hand_computed():
    # sweep (extracted, correct) -> P, R, F1 with |gold| = 4:
    #   1.5: (1,1) P=1   R=1/4 F1=0.4
    #   1.4: (2,2) P=1   R=1/2 F1=2/3
    #   1.3: (3,2) P=2/3 R=1/2 F1=4/7
    #   1.2: (4,3) P=3/4 R=3/4 F1=3/4   <- best
    #   1.1: (5,3) P=3/5 R=3/4 F1=2/3
    #   1.0: (6,3) P=1/2 R=3/4 F1=3/5
    # threshold = midpoint (1.2 + 1.1) / 2 = 1.15
    th, f1 = M.bucc_best_threshold(DEV_CANDS, DEV_GOLD)
    assert th == approx(1.15)
    assert f1 == approx(0.75)
    assert M.bucc_f1(DEV_CANDS, DEV_GOLD, th) == approx({"precision": 0.75, "recall": 0.75, "f1": 0.75})


def test_bucc_f1_on_test_with_dev_threshold():
    test = [("a", "b", 1.3), ("c", "d", 1.16), ("e", "f", 1.15), ("g", "h", 1.0)]
    gold = [("a", "b"), ("e", "f"), ("g", "h")]
    # score >= 1.15 extracts (a,b), (c,d), (e,f): 2 correct of 3; |gold| 3
    # P = 2/3, R = 2/3, F1 = 2/3
    assert M.bucc_f1(test, gold, 1.15) == approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # nothing correct -> all zeros
    assert M.bucc_f1(test, gold, 2.0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_bucc_threshold_edge_cases():
    # best cut after the last candidate -> threshold = its score (official would crash)
    assert M.bucc_best_threshold([("x", "y", 0.9)], [("x", "y")]) == (approx(0.9), approx(1.0))
    # nothing correct -> threshold 0, F1 0
    assert M.bucc_best_threshold([("x", "z", 0.9)], [("x", "y")]) == (0.0, 0.0)
    # duplicate pair keeps max score: (x,y) at 0.7 and 0.9 -> one candidate at 0.9;
    # threshold 0.8 extracts it: P=1, R=1/2 (gold has 2) -> F1 = 2/3
    dup = [("x", "y", 0.7), ("x", "y", 0.9)]
    assert M.bucc_f1(dup, [("x", "y"), ("u", "v")], 0.8)["f1"] == approx(2 / 3)


# --------------------------------------------------------------------------- #
# Tatoeba / retrieval
# --------------------------------------------------------------------------- #


def test_tatoeba_accuracy_uses_cosine():
    src = [[1, 0], [1, 1], [0, 1], [1, -1]]
    tgt = [[10, 0], [1, 1.2], [0, 1], [-1, 0]]
    # src0 (1,0):  cos t0=1 -> t0 correct
    # src1 (1,1):  cos t0=.707, t1=2.2/(1.414*1.562)=.996, t2=.707 -> t1 correct
    #              (raw inner product would pick t0: 10 > 2.2)
    # src2 (0,1):  cos t2=1 -> correct
    # src3 (1,-1): cos t0=.707, t1=-.09, t2=-.707, t3=-.707 -> t0 wrong
    assert M.tatoeba_accuracy(src, tgt, direction="src2tgt") == approx(3 / 4)


def test_tatoeba_direction():
    src = [[1, 0], [0.8, 0.6]]
    tgt = [[1, 0], [0, 1]]
    # src2tgt: s0 -> t0 (1) ok; s1 -> t0 (.8 > .6) wrong -> 1/2
    assert M.tatoeba_accuracy(src, tgt, direction="src2tgt") == approx(0.5)
    # tgt2src (the default, XTREME): t0 -> s0 (1 > .8) ok; t1 -> s1 (.6 > 0) ok -> 1
    assert M.tatoeba_accuracy(src, tgt) == approx(1.0)
    # exact ties go to the lowest index (faiss IndexFlatL2, as XTREME's similarity_search)
    assert M.tatoeba_predictions([[1, 0], [2, 0]], [[1, 0], [3, 0]]).tolist() == [0, 0]
    with pytest.raises(XstiltsError):
        M.tatoeba_accuracy(src, tgt[:1])


def test_retrieval_rankings_cosine():
    q = [[1, 0], [0, 1]]
    c = [[0.9, 0.1], [5, 5], [0, 2]]
    # q0 (1,0): cos c0=.994, c1=.707, c2=0 -> [0, 1, 2] (raw IP would rank c1 first)
    # q1 (0,1): cos c2=1, c1=.707, c0=.110 -> [2, 1, 0]
    r = M.retrieval_rankings(q, c, k=2)
    assert r.shape == (2, 2)
    assert r.tolist() == [[0, 1], [2, 1]]
    # k capped at number of candidates
    assert M.retrieval_rankings(q, c, k=10).shape == (2, 3)


# --------------------------------------------------------------------------- #
# mAP@k
# --------------------------------------------------------------------------- #


def test_average_precision_at_k_hand_computed():
    # hits at ranks 1 and 3: (1/1 + 2/3) / min(2, 20) = (5/3)/2 = 5/6
    assert M.average_precision_at_k(["a", "x", "b", "y"], {"a", "b"}, k=20) == approx(5 / 6)
    # cutoff k=2, 3 relevant: only hit at rank 2 -> 1/2; divisor min(3, 2) = 2 -> 1/4
    # (the |relevant| convention would give 1/6)
    assert M.average_precision_at_k(["x", "a", "y", "b"], {"a", "b", "c"}, k=2) == approx(1 / 4)
    # repeated item counts once: a@1 -> 1/1, a@2 skipped, b@3 -> 2/3; (5/3)/2 = 5/6
    assert M.average_precision_at_k(["a", "a", "b"], {"a", "b"}, k=20) == approx(5 / 6)
    # no hit -> 0
    assert M.average_precision_at_k(["x", "y"], {"a"}) == 0.0


def test_map_at_k_mean_and_numpy_rows():
    rankings = [["a", "x", "b", "y"], ["x", "a", "y", "b"], ["x", "y"]]
    relevant = [{"a", "b"}, {"a", "b", "c"}, {"a"}]
    # k=20: q1 hits a@1, b@3 -> (1/1 + 2/3) / min(2,20) = 5/6
    #       q2 hits a@2, b@4 -> (1/2 + 2/4) / min(3,20) = 1/3
    #       q3 no hit -> 0;  mean = (5/6 + 1/3 + 0) / 3 = (7/6) / 3 = 7/18
    assert M.map_at_k(rankings, relevant, k=20) == approx(7 / 18)
    # k=2: q1 [a, x] -> (1/1)/min(2,2) = 1/2; q2 [x, a] -> (1/2)/min(3,2) = 1/4; q3 0
    # mean = (1/2 + 1/4 + 0) / 3 = 1/4
    assert M.map_at_k(rankings, relevant, k=2) == approx(1 / 4)
    # numpy rows from retrieval_rankings: relevant {2} found at rank 1 / rank 2
    rows = np.array([[2, 0, 1], [0, 2, 1]])
    # AP = 1/1 and 1/2 -> mean 3/4
    assert M.map_at_k(rows, [{2}, {2}], k=20) == approx(0.75)


def test_map_at_k_errors():
    with pytest.raises(XstiltsError):
        M.map_at_k([["a"]], [set()])
    with pytest.raises(XstiltsError):
        M.map_at_k([["a"]], [{"a"}, {"b"}])
    with pytest.raises(XstiltsError):
        M.map_at_k([], [])


# --------------------------------------------------------------------------- #
# XTREME score
# --------------------------------------------------------------------------- #

FULL_XTREME = {
    "xnli": {"en": 0.8, "de": 0.6},  # 0.7
    "pawsx": {"en": 0.9, "fr": 0.7},  # 0.8   -> classification 0.75
    "udpos": {"en": 0.9, "de": 0.7},  # 0.8
    "panx": {"en": 0.8, "de": 0.6},  # 0.7   -> structured 0.75
    "xquad": {"en": 0.8, "es": 0.6},  # 0.7
    "mlqa": {"en": 0.7, "de": 0.5},  # 0.6
    "tydiqa": {"en": 0.5},  # 0.5   -> QA (0.7+0.6+0.5)/3 = 0.6
    "bucc2018": {"de": 0.9, "fr": 0.7},  # 0.8
    "tatoeba": {"de": 0.6, "fr": 0.4},  # 0.5   -> retrieval 0.65
}


def test_xtreme_score_full():
    out = xtreme_score(FULL_XTREME)
    assert out["tasks"]["pawsx"] == approx(0.8)
    assert out["categories"] == approx({"classification": 0.75, "tagging": 0.75, "qa": 0.6, "retrieval": 0.65})
    # official evaluate.py: overall = mean over the 9 tasks = 6.1 / 9 (the mean of the 4 groups would be 0.6875)
    assert out["overall"] == approx(6.1 / 9, abs=1e-12)
    assert out["overall_partial"] == approx(6.1 / 9, abs=1e-12)
    assert out["missing_tasks"] == [] and out["unscored_tasks"] == []
    assert out["qa_without_em"] == ["mlqa", "tydiqa", "xquad"]


def test_xtreme_score_qa_is_mean_of_em_and_f1():
    res = dict(FULL_XTREME, xquad={"en": {"exact_match": 0.6, "f1": 0.8}, "es": {"exact_match": 0.4, "f1": 0.6}})
    out = xtreme_score(res)
    assert out["tasks"]["xquad"] == approx(0.6, abs=1e-12)  # (mean EM 0.5 + mean F1 0.7) / 2
    assert "xquad" not in out["qa_without_em"]


def test_xtreme_score_partial():
    partial = {k: v for k, v in FULL_XTREME.items() if k not in ("tydiqa", "tatoeba")}
    partial["paws-x"] = partial.pop("pawsx")  # alias accepted
    partial["custom"] = {"en": 0.1}
    out = xtreme_score(partial)
    assert out["overall"] is None
    assert out["categories"]["qa"] is None
    assert out["categories"]["retrieval"] is None
    assert out["categories"]["classification"] == approx(0.75)
    assert sorted(out["missing_tasks"]) == ["tatoeba", "tydiqa"]
    assert out["unscored_tasks"] == ["custom"]
    # partial QA = (0.7 + 0.6)/2 = 0.65; partial retrieval = 0.8 (bucc only)
    assert out["categories_partial"]["qa"] == approx(0.65)
    assert out["categories_partial"]["retrieval"] == approx(0.8)
    # overall_partial = mean over the 7 benchmark tasks present = 5.1 / 7
    assert out["overall_partial"] == approx(5.1 / 7, abs=1e-12)


def test_xtreme_score_tasks_filter_and_missing_category():
    out = xtreme_score(FULL_XTREME, tasks=["udpos", "panx"])
    # only structured prediction present: 0.75; other categories None everywhere
    assert out["categories_partial"] == {
        "classification": None,
        "tagging": approx(0.75),
        "qa": None,
        "retrieval": None,
    }
    assert out["overall"] is None
    assert out["overall_partial"] == approx(0.75)


def test_xtreme_r_score():
    res = {
        "xnli": {"en": 0.8},  # 0.8
        "xcopa": {"et": 0.6, "ht": 0.5},  # 0.55 -> classification 0.675
        "udpos": {"en": 0.9},  # 0.9
        "panx": {"en": 0.7},  # 0.7 -> structured 0.8
        "xquad": {"en": 0.9},
        "mlqa": {"en": 0.6},
        "tydiqa": {"en": 0.6},  # QA (0.9+0.6+0.6)/3 = 0.7
        "tatoeba": {"de": 0.9},
        "mewsli_x": {"de": 0.4},  # alias of mewsli-x
        "lareqa": {"de": 0.5},
    }
    out = xtreme_score(res, benchmark="xtreme-r")
    assert out["categories"]["classification"] == approx(0.675)
    assert out["categories"]["retrieval"] == approx(0.65)
    # official groups: retrieval = tatoeba + mewsli-x; multi_choice = xcopa; lareqa in no group
    assert out["categories"]["multi_choice"] == approx(0.55)
    # overall = mean over the 10 tasks = 6.85 / 10
    assert out["overall"] == approx(0.685, abs=1e-12)
    # the same results under XTREME lack pawsx and bucc2018
    assert sorted(xtreme_score(res)["missing_tasks"]) == ["bucc2018", "pawsx"]
    with pytest.raises(XstiltsError):
        xtreme_score(res, benchmark="glue")


def test_bucc_mine_merges_identical_texts_and_drops_texts_under_two_ids():
    src, tgt = [[1, 0], [0, 1], [0, 1]], [[1, 0], [0, 1]]
    pairs = M.bucc_mine(src, tgt, ["s0", "s1", "s2"], ["t0", "t1"], k=4,
                        src_texts=["a", "b", "b"], tgt_texts=["A", "B"])
    # "b" is one sentence for mining, but it has two ids: its pair is dropped (XTREME read_sent2id).
    # margin(a, A) = 1 / ((mean(1, 0) + mean(1, 0)) / 2) = 2
    assert pairs == [("s0", "t0", 2.0)]
    # over ids, s1 and s2 compete for t1 and the duplicate changes the margins
    by_id = M.bucc_mine(src, tgt, ["s0", "s1", "s2"], ["t0", "t1"], k=4)
    assert {(s, t) for s, t, _ in by_id} == {("s0", "t0"), ("s1", "t1")}
    with pytest.raises(XstiltsError, match="both"):
        M.bucc_mine(src, tgt, ["s0", "s1", "s2"], ["t0", "t1"], src_texts=["a", "b", "b"])


def test_lareqa_rankings_use_the_official_tie_order():
    # utils_lareqa ranks with scores.argsort()[::-1]: exactly tied candidates come highest index first
    assert M.lareqa_rankings([[1, 0]], [[1, 0], [1, 0], [0, 1]], 3).tolist() == [[1, 0, 2]]
    assert M.lareqa_rankings([[1, 0]], [[0, 1], [1, 0], [1, 0]], 2).tolist() == [[2, 1]]
    with pytest.raises(XstiltsError):
        M.lareqa_rankings([[1, 0]], [[1, 0]], 0)
