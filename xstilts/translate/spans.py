"""Sentence splitting and span QA's *mark and translate* (:func:`translate_span_qa`)."""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import Counter

from .mt import Translate, _translate_unique

# ---------------------------------------------------------------- sentences

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "no", "vol", "gen", "col", "lt",
    "sgt", "capt", "rev", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "mt", "ft", "fig", "approx", "est", "ca", "cf", "al", "op", "pp", "gov", "sen",
}
_WESTERN_END = re.compile(r"[.!?]+[\"'”’»)\]]*(?=\s)")
_CJK_END = re.compile(r"[。！？]+[」』”’)]*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, without surrounding whitespace.

    A rule-based splitter: a break after ``.!?`` followed by whitespace and an
    upper-case letter, digit or opening quote, unless the word before is an
    abbreviation or an initial ("Mr.", "U.S.", "J."); a break after ``。！？``.
    Erring towards fewer breaks only makes a piece longer.
    """
    cuts = []
    for m in _WESTERN_END.finditer(text):
        rest = text[m.end():].lstrip()
        if not rest or not (rest[0].isupper() or rest[0].isdigit() or rest[0] in "\"'“‘«(["):
            continue
        if text[m.start()] == ".":
            word = re.search(r"(\S*)$", text[: m.start()]).group(1).lstrip("\"'“‘«([").lower()
            if word in _ABBREVIATIONS or len(word) == 1 or "." in word:
                continue
        cuts.append(m.end())
    cuts += [m.end() for m in _CJK_END.finditer(text) if m.end() < len(text)]
    spans, start = [], 0
    for cut in sorted(set(cuts)) + [len(text)]:
        piece = text[start:cut]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = cut
    return spans


def _pieces(text: str, segment: bool) -> list[str]:
    if not text or not text.strip():
        return []
    return [text[a:b] for a, b in sentence_spans(text)] if segment else [text.strip()]


def translate_texts(texts: list[str], translate: Translate, *, segment: bool = True, joiner: str = " ") -> list[str]:
    """Translate each text (sentence by sentence with ``segment``), in one call of ``translate``."""
    pieces = [_pieces(t or "", segment) for t in texts]
    table = _translate_unique(translate, (p for ps in pieces for p in ps))
    return [joiner.join(x for x in (table[p] for p in ps) if x) for ps in pieces]


# ---------------------------------------------------------------- span QA: mark and translate

#: Marker pairs tried in order (the first whose characters are absent from the marked sentence wins),
#: with the variants a model may turn them into (full-width brackets, French or German quotes).
MARKERS: tuple[tuple[str, str], ...] = (("[", "]"), ("«", "»"), ("{", "}"))
MARKER_VARIANTS = {"[": "[［【〔", "]": "]］】〕", "«": "«»‹›", "»": "«»‹›", "{": "{｛", "}": "}｝"}

# reasons and methods in the summary
MAPPED_BY = ("marker", "answer_exact", "answer_casefold", "source_answer", "unanswerable")
DROP_REASONS = ("answer_not_found", "bad_source_span", "empty_translation")
_TRAILING = ".。,，;；:：!！?？\"'“”‘’«»"


def _marker_chars(pair: tuple[str, str]) -> str:
    return MARKER_VARIANTS.get(pair[0], pair[0]) + MARKER_VARIANTS.get(pair[1], pair[1])


def extract_marked(translated: str, pair: tuple[str, str]) -> tuple[str, int, str] | None:
    """Find the marked answer in a translation: ``(clean text, answer start, answer)`` or None.

    Exactly two marker characters (any variant of the pair) must be present;
    they are removed with the whitespace just inside them.
    """
    chars = _marker_chars(pair)
    where = [i for i, ch in enumerate(translated) if ch in chars]
    if len(where) != 2:
        return None
    o, c = where
    left, inner, right = translated[:o], translated[o + 1 : c], translated[c + 1 :]
    core = inner.strip()
    if not core:
        return None
    if inner[: len(inner) - len(inner.lstrip())] and left and not left[-1].isspace():
        left += " "
    if inner[len(inner.rstrip()) :] and right and not right[0].isspace():
        right = " " + right
    if left.endswith(" ") and not left.strip():
        left = ""
    return left + core + right, len(left), core


def strip_markers(translated: str, pair: tuple[str, str]) -> str:
    chars = _marker_chars(pair)
    return re.sub(r"\s{2,}", " ", "".join(ch for ch in translated if ch not in chars)).strip()


def locate(candidates: list[str], context: str, expected: float, case_insensitive: bool) -> tuple[int, str] | None:
    """The occurrence of the first findable candidate nearest to ``expected``: ``(start, text as in context)``.

    Whitespace inside a candidate matches any whitespace run; trailing
    punctuation that translation adds to a short phrase is tried without.
    """
    for cand in candidates:
        cand = cand.strip()
        for form in dict.fromkeys([cand, cand.strip(_TRAILING).strip()]):
            if not form:
                continue
            pattern = r"\s+".join(re.escape(w) for w in form.split())
            hits = list(re.finditer(pattern, context, re.IGNORECASE if case_insensitive else 0))
            if hits:
                m = min(hits, key=lambda h: abs(h.start() - expected))
                return m.start(), m.group(0)
    return None


@dataclasses.dataclass
class _QAPlan:
    example: dict
    before: list[str]
    after: list[str]
    piece: str = ""  # the sentence(s) holding the answer, unmarked
    marked: str = ""  # the same with markers, or "" when no marker pair is free
    pair: tuple[str, str] | None = None
    rel: float = 0.0  # answer start / piece length, for choosing among several occurrences


def translate_span_qa(examples: list[dict], translate: Translate, *, segment: bool = True, joiner: str = " ",
                      markers: tuple[tuple[str, str], ...] = MARKERS) -> tuple[list[dict], dict]:
    """Translate span-QA examples, carrying the first answer across by mark-and-translate.

    Args:
        examples: family-native span-QA dicts (``id, question, context, answers``).
        translate: ``list[str] -> list[str]``; called twice at most (the texts,
            then the answers whose markers were lost).
        segment: translate contexts sentence by sentence (only the sentence
            with the answer is marked).
        joiner: what joins translated sentences (``""`` for Chinese, Japanese).

    Returns:
        ``(kept examples, stats)``: stats has ``mapped`` (method -> count, keys
        :data:`MAPPED_BY`), ``dropped`` (reason -> count, :data:`DROP_REASONS`),
        ``markers_lost`` and ``extra_answers_dropped`` (answers after the first,
        kept only when found in the translated context). Kept + dropped = input.
    """
    mapped, dropped = Counter(), Counter()
    plans: list[_QAPlan | None] = []
    for e in examples:
        ctx = e["context"] or ""
        answers = e.get("answers") or {"text": [], "answer_start": []}
        spans = sentence_spans(ctx) if segment else ([(len(ctx) - len(ctx.lstrip()), len(ctx.rstrip()))] if ctx.strip() else [])
        if not answers["text"]:
            plans.append(_QAPlan(e, [ctx[a:b] for a, b in spans], []))
            continue
        text, s0 = answers["text"][0], answers["answer_start"][0]
        s1 = s0 + len(text)
        if not text.strip() or not spans or ctx[s0:s1] != text:
            dropped["bad_source_span"] += 1
            plans.append(None)
            continue
        starts = [a for a, _ in spans]
        i = max(0, bisect.bisect_right(starts, s0) - 1)
        j = max(i, bisect.bisect_left(starts, s1) - 1)
        ps, pe = spans[i][0], spans[j][1]
        piece = ctx[ps:pe]
        a, b = max(s0 - ps, 0), min(s1 - ps, len(piece))
        if not piece[a:b].strip():
            dropped["bad_source_span"] += 1
            plans.append(None)
            continue
        pair = next((p for p in markers if not any(ch in piece for ch in _marker_chars(p))), None)
        marked = piece[:a] + pair[0] + piece[a:b] + pair[1] + piece[b:] if pair else ""
        plans.append(_QAPlan(e, [ctx[x:y] for x, y in spans[:i]], [ctx[x:y] for x, y in spans[j + 1 :]],
                             piece, marked, pair, a / max(len(piece), 1)))

    live = [p for p in plans if p is not None]
    table = _translate_unique(translate, [x for p in live for x in
                                          (p.example["question"], *p.before, *p.after, p.marked or p.piece)])
    staged = []  # (plan, question, context, answer start or None, answer text or None, expected start)
    need_answers: list[str] = []
    for p in live:
        question = table.get(p.example["question"], "")
        head = [x for x in (table.get(s, "") for s in p.before) if x]
        tail = [x for x in (table.get(s, "") for s in p.after) if x]
        if not p.piece:  # unanswerable (SQuAD 2.0)
            staged.append((p, question, joiner.join(head), None, None, 0.0))
            continue
        raw = table.get(p.marked or p.piece, "")
        src_answer = p.example["answers"]["text"][0]
        got = extract_marked(raw, p.pair) if p.marked else None
        if got is not None and len(got[2]) > 4 * len(src_answer) + 20:
            got = None  # the markers drifted far apart: not trustworthy
        if got is None:
            clean, start, answer = (strip_markers(raw, p.pair) if p.marked else raw), None, None
            need_answers.append(src_answer)
        else:
            clean, start, answer = got
        prefix = joiner.join(head) + joiner if head and clean else joiner.join(head)
        context = prefix + clean + (joiner + joiner.join(tail) if tail else "")
        staged.append((p, question, context, None if start is None else len(prefix) + start, answer,
                       len(prefix) + p.rel * len(clean)))
        need_answers += p.example["answers"]["text"][1:]
    answers_mt = _translate_unique(translate, need_answers) if need_answers else {}

    def find(src: str, context: str, expected: float) -> tuple[str, tuple[int, str]] | None:
        for how, cands, ci in (("answer_exact", [answers_mt.get(src, "")], False),
                               ("answer_casefold", [answers_mt.get(src, "")], True),
                               ("source_answer", [src], True)):
            hit = locate(cands, context, expected, ci)
            if hit:
                return how, hit
        return None

    out, markers_lost, extra_dropped = [], 0, 0
    for p, question, context, start, answer, expected in staged:
        e = p.example
        if not question or (e["context"].strip() and not context):
            dropped["empty_translation"] += 1
            continue
        if not p.piece:
            mapped["unanswerable"] += 1
            out.append({**e, "question": question, "context": context, "answers": {"text": [], "answer_start": []}})
            continue
        src_answers = e["answers"]["text"]
        if start is not None:
            method = "marker"
        else:
            markers_lost += 1
            hit = find(src_answers[0], context, expected)
            if hit is None:
                dropped["answer_not_found"] += 1
                continue
            method, (start, answer) = hit
        texts, starts = [answer], [start]
        scale = len(context) / max(len(e["context"]), 1)
        for extra, at in zip(src_answers[1:], e["answers"]["answer_start"][1:]):  # dev-style extra references
            hit = find(extra, context, at * scale)
            if hit is None:
                extra_dropped += 1
            else:
                starts.append(hit[1][0])
                texts.append(hit[1][1])
        mapped[method] += 1
        out.append({**e, "question": question, "context": context, "answers": {"text": texts, "answer_start": starts}})
    stats = {"mapped": {k: mapped[k] for k in MAPPED_BY if mapped[k]},
             "dropped": {k: dropped[k] for k in DROP_REASONS if dropped[k]},
             "markers_lost": markers_lost, "extra_answers_dropped": extra_dropped}
    return out, stats
