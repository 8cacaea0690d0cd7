"""Span-QA readers (SQuAD-style JSON: SQuAD, XQuAD, MLQA, TyDiQA-GoldP):
``{"id", "question", "context", "answers": {"text": [str], "answer_start": [int]}}`` (unanswerable: empty lists).

The reader contract (arguments, errors, ``skip_invalid``) is in :mod:`xstilts.io`.
"""

from __future__ import annotations

from .base import ReadStats, _Bad, _Ctx, _get, _json_document, _short, _text, log


def read_squad(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
               strict_offsets: bool = True, require_answers: bool = True,
               duplicate_ids: str = "error") -> list[dict]:
    """SQuAD v1.1 / v2.0 JSON (XQuAD, MLQA, TyDiQA-GoldP): one example per question.

    Checks every answer: ``context[answer_start:answer_start + len(text)] == text``.
    A mismatch is a bad record unless ``strict_offsets=False``, which keeps the
    example and counts the answer in ``stats.answer_offset_mismatches`` (the
    real XQuAD, MLQA dev and TyDiQA-GoldP files here have none). A v2.0
    question with ``is_impossible: true`` gets empty answer lists (its
    ``plausible_answers`` are ignored). Any other question without answers is
    a bad record unless ``require_answers=False`` (e.g. answer-stripped test
    files). Scoring keys predictions by id, so a repeated question id is a bad
    record (``duplicate_ids="error"``, naming both places); with
    ``duplicate_ids="rename"`` (for training files, which are never scored) it
    gets ``~1``, ``~2``, ... appended and is counted in ``stats.duplicate_ids``
    (the XTREME TyDiQA-GoldP English train file reuses small integers as ids:
    3696 questions, 89 distinct ids). Errors name the record by its 0-based
    index path, e.g. ``data[3].paragraphs[0].qas[2]``, with line None.
    """
    if duplicate_ids not in ("error", "rename"):
        raise ValueError(f"duplicate_ids must be 'error' or 'rename', got {duplicate_ids!r}")
    ctx = _Ctx(path, skip_invalid, stats)
    doc = _json_document(ctx)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ctx.error(None, "data", "missing: expected a SQuAD-style object with a 'data' list")
    out: list[dict] = []
    seen: dict[str, str] = {}
    dups = 0
    for a_i, article in enumerate(doc["data"]):
        where_a = f"data[{a_i}]"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            ctx.bad(ctx.error(None, f"{where_a}.paragraphs", "missing or not a list"))
            continue
        for p_i, par in enumerate(paragraphs):
            where_p = f"{where_a}.paragraphs[{p_i}]"
            try:
                if not isinstance(par, dict):
                    raise _Bad(where_p, "expected an object")
                context = _text(par, "context", where_p + ".")
                qas = _get(par, "qas", list, where_p + ".")
            except _Bad as b:
                ctx.bad(ctx.error(None, b.fld, b.message))
                continue
            for q_i, qa in enumerate(qas):
                where_q = f"{where_p}.qas[{q_i}]"
                try:
                    ex, mismatches = _squad_question(qa, context, where_q, strict_offsets, require_answers)
                except _Bad as b:
                    ctx.bad(ctx.error(None, b.fld, b.message))
                    continue
                if ex["id"] in seen and duplicate_ids == "error":
                    ctx.bad(ctx.error(None, where_q + ".id", f"duplicate question id {ex['id']!r} (first at "
                                                             f"{seen[ex['id']]}); predictions are scored by id"))
                    continue
                if ex["id"] in seen:
                    base, k = ex["id"], 1
                    while f"{base}~{k}" in seen:
                        k += 1
                    ex["id"] = f"{base}~{k}"
                    ctx.stats.duplicate_ids += 1
                    dups += 1
                seen[ex["id"]] = where_q
                ctx.stats.answer_offset_mismatches += mismatches
                out.append(ex)
    if dups:
        log.warning("%s: %d duplicate question id(s) renamed '<id>~<n>'", ctx.path, dups)
    ctx.done(len(out))
    return out


def _squad_question(qa, context: str, where: str, strict_offsets: bool, require_answers: bool):
    if not isinstance(qa, dict):
        raise _Bad(where, "expected an object")
    qid = _get(qa, "id", (str, int), where + ".")
    question = _text(qa, "question", where + ".")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise _Bad(where + ".is_impossible", f"expected true/false, got {impossible!r}")
    texts: list[str] = []
    starts: list[int] = []
    mismatches = 0
    if not impossible:
        answers = _get(qa, "answers", list, where + ".")
        for k, ans in enumerate(answers):
            w = f"{where}.answers[{k}]"
            if not isinstance(ans, dict):
                raise _Bad(w, "expected an object with text and answer_start")
            text = _text(ans, "text", w + ".")
            start = _get(ans, "answer_start", int, w + ".")
            if start < 0 or context[start:start + len(text)] != text:
                if strict_offsets:
                    raise _Bad(w + ".answer_start",
                               f"answer_start {start} does not point at the answer text {_short(text)} "
                               f"(context there: {_short(context[max(start, 0):max(start, 0) + len(text)])})")
                mismatches += 1
            texts.append(text)
            starts.append(start)
        if not texts and require_answers:
            raise _Bad(where + ".answers", "no answers, and the question is not marked is_impossible")
    return ({"id": str(qid), "question": question, "context": context,
             "answers": {"text": texts, "answer_start": starts}}, mismatches)


read_xquad = read_squad
read_mlqa = read_squad
read_tydiqa = read_squad
