"""Multiple-choice readers (COPA/XCOPA, SIQA, CosmosQA, CommonsenseQA, HellaSwag):
``{"context": str, "question": str, "choices": [str], "label": int}``.

The reader contract (arguments, errors, ``skip_invalid``) is in :mod:`xstilts.io`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .base import ReadStats, _Bad, _Ctx, _Lines, _csv_rows, _get, _int_label, _jsonl, _records, _short, _text, file_present


COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}
HELLASWAG_ENDINGS = 4




def read_copa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """COPA / XCOPA JSONL ``{"premise","choice1","choice2","question":"cause"|"effect","label":0|1}``.

    context = premise, question = "What was the cause?" / "What happened as a
    result?", choices = [choice1, choice2].
    """
    ctx = _Ctx(path, skip_invalid, stats)

    def convert(obj):
        q = _get(obj, "question")
        if q not in COPA_QUESTIONS:
            raise _Bad("question", f"expected 'cause' or 'effect', got {q!r}")
        return {"context": _text(obj, "premise"), "question": COPA_QUESTIONS[q],
                "choices": [_text(obj, "choice1"), _text(obj, "choice2")],
                "label": _int_label(_get(obj, "label", (int, str)), 2)}

    return _records(ctx, _jsonl(ctx), convert)


read_xcopa = read_copa


def _siqa_labels_path(path: Path) -> tuple[Path | None, Path]:
    """(the labels file beside ``path`` or None, the name it would have)."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else Path(name).stem
    expected = path.with_name(f"{stem}-labels.lst")
    for cand in (expected, path.with_name(f"{stem}-labels.lst.gz")):
        if file_present(cand):
            return cand, expected
    return None, expected


def read_siqa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
              labels_path=None) -> list[dict]:
    """SocialIQA JSONL ``{"context","question","answerA","answerB","answerC"}``.

    The label comes from the record's ``"correct": "A"|"B"|"C"`` (v1.4 files)
    or else from a labels file with one of 1/2/3 per line, aligned with the
    data lines (``labels_path``; by default ``<stem>-labels.lst`` beside the
    data file, as in the official ``dev.jsonl`` / ``dev-labels.lst``).
    Labels become 0/1/2. Different record / label counts raise DataError; a bad
    or empty label names the labels file and its line (blank lines at the end
    of the labels file are ignored). Records without ``correct`` and no labels
    file: a DataError naming the labels file that was looked for.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    path = ctx.path
    lines = _Lines(ctx)
    expected = None
    if labels_path is None:
        labels_path, expected = _siqa_labels_path(path)
    gold: list[tuple[int, str]] = []
    pos: dict[int, int] = {}
    if labels_path is not None:
        gold = [(n, s.strip()) for n, s in _Lines(_Ctx(labels_path, False, None))]
        while gold and not gold[-1][1]:
            gold.pop()
        data = [n for n, s in enumerate(lines.lines, 1) if s.strip()]
        if len(gold) != len(data):
            line = gold[len(data)][0] if len(gold) > len(data) else (gold[-1][0] + 1 if gold else 1)
            raise DataError(labels_path, line, None,
                            f"{len(gold)} labels for {len(data)} records in {path.name}: not aligned")
        pos = {n: i for i, n in enumerate(data)}
    out = []
    for n, obj in _jsonl(ctx, lines):
        try:
            ex = {"context": _text(obj, "context"), "question": _text(obj, "question"),
                  "choices": [_text(obj, "answerA"), _text(obj, "answerB"), _text(obj, "answerC")]}
            if "correct" in obj:
                c = _get(obj, "correct")
                if c not in ("A", "B", "C"):
                    raise _Bad("correct", f"unknown label {c!r}; expected A, B or C")
                ex["label"] = "ABC".index(c)
            elif labels_path is None:
                raise DataError(expected, None, None, f"labels file not found: the records of {path.name} (line {n} "
                                                      f"on) have no 'correct' field, so their labels come from "
                                                      f"{expected.name} beside it (or pass labels_path=...)")
            else:
                ln, value = gold[pos[n]]
                try:
                    if not value:
                        raise _Bad("label", "empty")
                    ex["label"] = _int_label(value, 3, base=1)
                except _Bad as b:
                    ctx.bad(DataError(labels_path, ln, "label", f"{b.message} (expected 1, 2 or 3)"))
                    continue
        except _Bad as b:
            ctx.bad(ctx.error(n, b.fld, b.message))
            continue
        out.append(ex)
    ctx.done(len(out))
    return out


def read_cosmosqa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """Cosmos QA: CSV with header ``id,context,question,answer0..answer3,label`` (``.csv``)
    or JSONL with the same keys (any other extension). Label 0..3."""
    ctx = _Ctx(path, skip_invalid, stats)
    name = ctx.path.name[:-3] if ctx.path.name.endswith(".gz") else ctx.path.name
    keys = ("context", "question", "answer0", "answer1", "answer2", "answer3", "label")

    def convert(obj):
        return {"context": _text(obj, "context"), "question": _text(obj, "question"),
                "choices": [_text(obj, f"answer{i}") for i in range(4)],
                "label": _int_label(_get(obj, "label", (int, str)), 4)}

    if not name.endswith(".csv"):
        return _records(ctx, _jsonl(ctx), convert)
    rows = iter(_csv_rows(ctx, _Lines(ctx, keepends=True)))
    first = next(rows, None)
    if first is None:
        ctx.done(0)
        return []
    hn, header = first
    missing = [k for k in keys if k not in header]
    if missing:
        raise ctx.error(hn, None, f"header lacks column(s) {', '.join(missing)} (got {header})")

    def row_convert(row):
        if len(row) != len(header):
            raise _Bad(None, f"expected {len(header)} comma-separated columns, got {len(row)}")
        return convert(dict(zip(header, row)))

    return _records(ctx, rows, row_convert)


def read_commonsenseqa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """CommonsenseQA JSONL, either layout.

    * Hugging Face: ``{"question": str, "choices": {"label": [..], "text": [..]}, "answerKey"}``
    * original: ``{"question": {"stem", "choices": [{"label", "text"}]}, "answerKey"}``

    context = "" (the task has none); label = position of ``answerKey`` among the choice labels.
    """
    ctx = _Ctx(path, skip_invalid, stats)

    def convert(obj):
        q = _get(obj, "question", (str, dict))
        if isinstance(q, dict):
            stem = _text(q, "stem", "question.")
            choices = _get(q, "choices", list, "question.")
            keys, texts = [], []
            for i, c in enumerate(choices):
                if not isinstance(c, dict):
                    raise _Bad(f"question.choices[{i}]", "expected an object with label and text")
                keys.append(_get(c, "label", str, f"question.choices[{i}]."))
                texts.append(_get(c, "text", str, f"question.choices[{i}]."))
        else:
            stem = _text(obj, "question")
            ch = _get(obj, "choices", dict)
            keys, texts = _get(ch, "label", list, "choices."), _get(ch, "text", list, "choices.")
            if len(keys) != len(texts) or not all(isinstance(t, str) for t in texts + keys):
                raise _Bad("choices", f"expected equally long string lists, got {len(keys)} labels, {len(texts)} texts")
        if len(texts) < 2:
            raise _Bad("choices", f"expected at least 2 choices, got {len(texts)}")
        for i, t in enumerate(texts):
            if not t.strip():
                raise _Bad(f"choices.text[{i}]" if not isinstance(q, dict) else f"question.choices[{i}].text", "empty")
        key = _get(obj, "answerKey")
        if key not in keys:
            raise _Bad("answerKey", f"unknown label {key!r}; choice labels are {', '.join(keys)}")
        return {"context": "", "question": stem, "choices": list(texts), "label": keys.index(key)}

    return _records(ctx, _jsonl(ctx), convert)


def read_hellaswag(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """HellaSwag JSONL, either layout; context = ``activity_label + ": " + ctx``, question = "".

    * converted validation file here: ``{"idx", "ctx", "label", "endings"}`` whose
      ``ctx`` already starts with the activity label;
    * official: ``{"activity_label", "ctx_a", "ctx_b", "ctx", "endings", "label", ...}``
      (``ctx`` is rebuilt from ``ctx_a`` + ``ctx_b`` when absent).

    Every record has exactly :data:`HELLASWAG_ENDINGS` non-empty endings.
    """
    ctx = _Ctx(path, skip_invalid, stats)

    def convert(obj):
        if "activity_label" in obj:
            if "ctx" in obj:
                c = _text(obj, "ctx")
            else:
                c = (_get(obj, "ctx_a") + " " + _get(obj, "ctx_b")).strip()
                if not c:
                    raise _Bad("ctx_a", "empty (and so is ctx_b)")
            context = f"{_get(obj, 'activity_label')}: {c}"
        else:
            context = _text(obj, "ctx")
        endings = _get(obj, "endings", list)
        if len(endings) != HELLASWAG_ENDINGS or not all(isinstance(e, str) for e in endings):
            raise _Bad("endings", f"expected a list of {HELLASWAG_ENDINGS} strings, got {len(endings)}: "
                                  f"{_short(endings)}")
        for i, e in enumerate(endings):
            if not e.strip():
                raise _Bad(f"endings[{i}]", "empty")
        return {"context": context, "question": "", "choices": list(endings),
                "label": _int_label(_get(obj, "label", (int, str)), len(endings))}

    return _records(ctx, _jsonl(ctx), convert)
