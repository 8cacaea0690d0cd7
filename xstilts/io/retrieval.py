"""Retrieval readers (Tatoeba, BUCC, XQuAD-R, Mewsli-X); each returns one structure for the whole
file (pair), not one dict per record.

The reader contract (arguments, errors, ``skip_invalid``) is in :mod:`xstilts.io`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from .base import ReadStats, _Bad, _Ctx, _Lines, _get, _json_document, _jsonl, _records, _short, _text, log
from .span_qa import _squad_question


def read_tatoeba(src_path, tgt_path, *, skip_invalid: bool = False,
                 stats: ReadStats | None = None) -> dict:
    """Line-aligned parallel files -> ``{"source": [str], "target": [str]}``.

    Different line counts raise DataError (always: alignment is lost). An
    empty line or invalid UTF-8 on either side makes that pair bad.
    """
    sctx = _Ctx(src_path, skip_invalid, stats)
    tctx = _Ctx(tgt_path, skip_invalid, sctx.stats)
    src, tgt = _Lines(sctx), _Lines(tctx)
    if len(src.lines) != len(tgt.lines):
        n = min(len(src.lines), len(tgt.lines)) + 1
        longer = src_path if len(src.lines) > len(tgt.lines) else tgt_path
        raise DataError(longer, n, None,
                        f"not aligned: {Path(src_path).name} has {len(src.lines)} lines, "
                        f"{Path(tgt_path).name} has {len(tgt.lines)}")
    source, target = [], []
    for i, (s, t) in enumerate(zip(src.lines, tgt.lines)):
        n = i + 1
        if not (src.check(n) and tgt.check(n)):
            continue
        if not s.strip() or not t.strip():
            sctx.bad(DataError(src_path if not s.strip() else tgt_path, n, None, "empty sentence"))
            continue
        source.append(s)
        target.append(t)
    sctx.done(len(source))
    if tctx.skipped:
        log.warning("%s: skipped %d invalid line(s); first: %s", tctx.path, tctx.skipped, tctx.first_error)
    return {"source": source, "target": target}


def _id_sentences(ctx: _Ctx) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in _Lines(ctx):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            ctx.bad(ctx.error(n, None, f"expected id<TAB>sentence, got {len(parts)} tab-separated fields"))
            continue
        sid, sent = parts[0].strip(), parts[1]
        if not sid:
            ctx.bad(ctx.error(n, "id", "empty id"))
        elif not sent.strip():
            ctx.bad(ctx.error(n, "sentence", "empty"))
        elif sid in out:
            ctx.bad(ctx.error(n, "id", f"duplicate id {sid!r}"))
        else:
            out[sid] = sent
    return out


def read_bucc(src_path, tgt_path, gold_path=None, *, skip_invalid: bool = False,
              stats: ReadStats | None = None) -> dict:
    """BUCC 2018: ``id<TAB>sentence`` files (+ optional ``src_id<TAB>tgt_id`` gold) ->
    ``{"source": {id: sent}, "target": {id: sent}, "gold": [(src_id, tgt_id)]}``.

    Ids must be unique per file; gold ids must exist in the source / target.
    ``stats.read`` grows by the source and target sentences and gold pairs read.
    """
    sctx = _Ctx(src_path, skip_invalid, stats)
    source = _id_sentences(sctx)
    tctx = _Ctx(tgt_path, skip_invalid, sctx.stats)
    target = _id_sentences(tctx)
    gold: list[tuple[str, str]] = []
    if gold_path is not None:
        gctx = _Ctx(gold_path, skip_invalid, sctx.stats)
        for n, line in _Lines(gctx):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("\t")]
            if len(parts) != 2:
                gctx.bad(gctx.error(n, None, f"expected src_id<TAB>tgt_id, got {len(parts)} tab-separated fields"))
            elif parts[0] not in source:
                gctx.bad(gctx.error(n, "src_id", f"id {parts[0]!r} not in {Path(src_path).name}"))
            elif parts[1] not in target:
                gctx.bad(gctx.error(n, "tgt_id", f"id {parts[1]!r} not in {Path(tgt_path).name}"))
            else:
                gold.append((parts[0], parts[1]))
        gctx.done(len(gold))
    sctx.done(len(source))
    tctx.done(len(target))
    return {"source": source, "target": target, "gold": gold}


def read_xquad_r(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
                 id_prefix: str = "") -> dict:
    """LAReQA XQuAD-R JSON (one language) -> questions and candidate answer sentences.

    Returns ``{"questions": [{"id", "question", "answer_sentence_ids": [..]}],
    "sentences": [{"id", "text", "context"}]}``. Every paragraph carries
    ``sentences`` and ``sentence_breaks`` (``[start, end)`` character offsets
    into ``context``); each sentence becomes a candidate with id
    ``f"{id_prefix}{article}-{paragraph}-{sentence}"`` (0-based indices; use
    ``id_prefix`` such as ``"de:"`` to pool several languages) and the
    paragraph as its context. A question's relevant sentence is the one whose
    break span contains its ``answer_start`` (answers may run past the end of
    that sentence; it is still the one). Sentence text is taken from
    ``sentences`` (in the Turkish file two of them differ slightly from the
    context slice). ``stats.read`` counts questions.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    doc = _json_document(ctx)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ctx.error(None, "data", "missing: expected a SQuAD-style object with a 'data' list")
    questions: list[dict] = []
    sentences: list[dict] = []
    for a_i, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            ctx.bad(ctx.error(None, f"data[{a_i}].paragraphs", "missing or not a list"))
            continue
        for p_i, par in enumerate(paragraphs):
            where = f"data[{a_i}].paragraphs[{p_i}]"
            try:
                if not isinstance(par, dict):
                    raise _Bad(where, "expected an object")
                context = _text(par, "context", where + ".")
                sents = _get(par, "sentences", list, where + ".")
                breaks = _get(par, "sentence_breaks", list, where + ".")
                qas = _get(par, "qas", list, where + ".")
                if len(sents) != len(breaks):
                    raise _Bad(where + ".sentence_breaks",
                               f"{len(breaks)} breaks for {len(sents)} sentences")
                spans = []
                for s_i, (s, b) in enumerate(zip(sents, breaks)):
                    if not isinstance(s, str):
                        raise _Bad(f"{where}.sentences[{s_i}]", "expected a string")
                    if (not isinstance(b, list) or len(b) != 2 or not all(type(x) is int for x in b)
                            or not 0 <= b[0] <= b[1] <= len(context)):
                        raise _Bad(f"{where}.sentence_breaks[{s_i}]",
                                   f"expected [start, end] within the context (length {len(context)}), got {_short(b)}")
                    spans.append((b[0], b[1]))
            except _Bad as b:
                ctx.bad(ctx.error(None, b.fld, b.message))
                continue
            ids = [f"{id_prefix}{a_i}-{p_i}-{s_i}" for s_i in range(len(sents))]
            sentences.extend({"id": i, "text": s, "context": context} for i, s in zip(ids, sents))
            for q_i, qa in enumerate(qas):
                wq = f"{where}.qas[{q_i}]"
                try:
                    ex, _ = _squad_question(qa, context, wq, True, True)
                    rel = []
                    for k, start in enumerate(ex["answers"]["answer_start"]):
                        hit = [i for i, (s, e) in zip(ids, spans) if s <= start < e]
                        if not hit:
                            raise _Bad(f"{wq}.answers[{k}].answer_start",
                                       f"answer_start {start} is in no sentence_breaks span")
                        rel.extend(h for h in hit if h not in rel)
                except _Bad as b:
                    ctx.bad(ctx.error(None, b.fld, b.message))
                    continue
                questions.append({"id": ex["id"], "question": ex["question"], "answer_sentence_ids": rel})
    ctx.done(len(questions))
    return {"questions": questions, "sentences": sentences}




def _mewsli_context(obj: dict, where: str) -> dict:
    c = _get(obj, "context", dict, where)
    w = where + "context."
    return {"text": _get(c, "text", str, w), "language": _get(c, "language", str, w),
            "document_id": _get(c, "document_id", (str, int), w)}


def _mewsli_mention(m: Any, context: dict, where: str) -> dict:
    if not isinstance(m, dict):
        raise _Bad(where.rstrip("."), "expected an object")
    span = _get(m, "mention_span", dict, where)
    ws = where + "mention_span."
    text, start, end = _get(span, "text", str, ws), _get(span, "start", int, ws), _get(span, "end", int, ws)
    if not context["text"]:
        raise _Bad(where.split("mentions")[0] + "context.text",
                   "empty: the released *_no_text files lack article text; run get-mewsli-x.sh to restore it")
    if not 0 <= start <= end <= len(context["text"]) or context["text"][start:end] != text:
        raise _Bad(ws + "start", f"span [{start}, {end}) does not match mention text {_short(text)}")
    return {"id": str(_get(m, "example_id", (str, int), where)), "entity_id": _get(m, "entity_id", str, where),
            "mention": text, "start": start, "end": end, "context": context["text"],
            "language": context["language"], "document_id": str(context["document_id"])}


def _mewsli_entity(e: Any, where: str) -> dict:
    if not isinstance(e, dict):
        raise _Bad(where.rstrip(".") or None, "expected an object")
    return {"entity_id": _get(e, "entity_id", str, where), "title": _get(e, "title", str, where),
            "description": _get(e, "description", str, where),
            "language": _get(e, "description_language", str, where)}


def read_mewsli_x(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """Mewsli-X mention files (google-research ``dense_representations_for_entity_retrieval/mel``).

    Handles both JSONL layouts, one example per mention:

    * ``wikinews_mentions-{dev,test}.jsonl``: ``{"context": {..., "text", "language",
      "document_id"}, "mentions": [{"example_id", "entity_id",
      "mention_span": {"text", "start", "end"}}]}`` (one line per article);
    * ``wikipedia_pairs-{train,dev}.jsonl``: ``{"contextual_mention": {"context": {...},
      "mention": {...}}, "entity": {entity record}}``.

    Example: ``{"id", "entity_id", "mention", "start", "end", "context", "language",
    "document_id"}`` plus, for Wikipedia pairs, ``"entity"`` (as
    :func:`read_mewsli_x_entities` gives). The span must match the context text;
    the released ``*_no_text`` files (empty text) are rejected. A bad mention
    skips its whole line under ``skip_invalid``.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    out: list[dict] = []
    for n, obj in _jsonl(ctx):
        try:
            if "contextual_mention" in obj:
                cm = _get(obj, "contextual_mention", dict)
                context = _mewsli_context(cm, "contextual_mention.")
                ex = _mewsli_mention(_get(cm, "mention", dict, "contextual_mention."), context,
                                     "contextual_mention.mention.")
                ex["entity"] = _mewsli_entity(_get(obj, "entity", dict), "entity.")
                if ex["entity"]["entity_id"] != ex["entity_id"]:
                    raise _Bad("entity.entity_id", f"{ex['entity']['entity_id']!r} differs from the "
                                                   f"mention's entity_id {ex['entity_id']!r}")
                found = [ex]
            else:
                context = _mewsli_context(obj, "")
                mentions = _get(obj, "mentions", list)
                found = [_mewsli_mention(m, context, f"mentions[{i}].") for i, m in enumerate(mentions)]
        except _Bad as b:
            ctx.bad(ctx.error(n, b.fld, b.message))
            continue
        out.extend(found)
    ctx.done(len(out))
    return out


def read_mewsli_x_entities(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """Mewsli-X ``candidate_set_entities.jsonl`` -> ``[{"entity_id", "title", "description", "language"}]``."""
    ctx = _Ctx(path, skip_invalid, stats)
    return _records(ctx, _jsonl(ctx), lambda obj: _mewsli_entity(obj, ""))
