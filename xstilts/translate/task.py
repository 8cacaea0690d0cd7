"""Translate a task's examples (what the family says to translate) and a task's split into several languages."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, XstiltsError
from .codes import NO_SPACE_LANGS, base_lang, check_marian_pair, parse_target
from .mt import CachedTranslator, GenerationSettings, MTModel, Translate
from .spans import MARKERS, translate_span_qa, translate_texts

# ---------------------------------------------------------------- families


def translate_examples(family: str, examples: list[dict], translate: Translate, *, segment: bool = True,
                       joiner: str = " ") -> tuple[list[dict], dict]:
    """Translate the text fields of ``family`` examples; labels and other fields are kept.

    The family says what (:attr:`~xstilts.families.Family.TRANSLATION`): its ``TRANSLATABLE_FIELDS``
    (a list field element-wise), or span QA's mark and translate (:func:`translate_span_qa`).

    Returns ``(kept examples, stats)`` with ``stats["dropped"]`` reason -> count
    (an example whose non-empty text came back empty is dropped as
    ``empty_translation``); span QA adds the mapping counts of :func:`translate_span_qa`.

    Raises:
        XstiltsError: a family whose labels do not survive translation (tagging) or that has no training text.
    """
    fam = check_family(family)
    if fam.TRANSLATION == "spans":
        return translate_span_qa(examples, translate, segment=segment, joiner=joiner)
    names = fam.TRANSLATABLE_FIELDS
    fields = [[t for f in names for t in _texts(e.get(f))] for e in examples]
    flat = translate_texts([t for fs in fields for t in fs], translate, segment=segment, joiner=joiner)
    out, dropped, k = [], Counter(), 0
    for e, fs in zip(examples, fields):
        got, k = flat[k : k + len(fs)], k + len(fs)
        if any(src.strip() and not t for src, t in zip(fs, got)):
            dropped["empty_translation"] += 1
            continue
        new, j = dict(e), 0
        for f in names:
            n = len(_texts(e.get(f)))
            if isinstance(e.get(f), list):
                new[f] = got[j : j + n]
            elif f in fam.REQUIRED_FIELDS or e.get(f) is not None:  # an absent optional field stays absent
                new[f] = got[j]
            j += n
        out.append(new)
    return out, {"dropped": dict(dropped)}


def _texts(value) -> list[str]:
    """A field's texts: each element of a list field, else the one value ("" for None)."""
    return [c or "" for c in value] if isinstance(value, list) else [value or ""]


def translatable_families() -> tuple[str, ...]:
    from .. import families

    return tuple(f for f in families.FAMILIES if families.get_family(f).TRANSLATION)


def check_family(family: str):
    """The family module of ``family`` if its tasks can be machine-translated, else an XstiltsError saying why."""
    from ..families import get_family

    fam = get_family(family)
    if not fam.TRANSLATION:
        raise XstiltsError(fam.NOT_TRANSLATABLE_REASON or f"the {family} family is not translated "
                                                          f"(translatable: {', '.join(translatable_families())})")
    return fam


# ---------------------------------------------------------------- a task, several languages


@dataclasses.dataclass
class TranslateResult:
    """What :func:`translate_task` did: one summary per language and the config snippet."""

    task: str
    split: str
    out_dir: Path
    summaries: dict[str, dict]
    snippet: str


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def output_paths(out_dir, task: str, split: str, lang: str) -> tuple[Path, Path]:
    """``(data file, summary file)`` of one language."""
    base = Path(out_dir) / task
    summary = f"translate-{lang}.json" if split == "train" else f"translate-{split}-{lang}.json"
    return base / f"{split}-{lang}.jsonl", base / summary


def _done(data: Path, summary: Path, identity: dict) -> dict | None:
    if not (data.exists() and summary.exists()):
        return None
    try:
        old = json.loads(summary.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return old if old.get("identity") == identity else None


def _guard_overwrite(data: Path, summary: Path, sources: list[Path]) -> None:
    """Never overwrite an input file, nor a file that ``translate`` did not write (``--force`` or not)."""
    for src in sources:
        if data.exists() and src.exists() and os.path.samefile(data, src):
            raise ConfigError(f"{data} is an input file of the task; choose another --out")
    if data.exists() and not summary.exists():
        raise ConfigError(f"{data} exists and was not written by `xstilts translate` (no {summary.name}); "
                          "remove it or choose another --out")


def translate_task(task, targets: list[str], model: str | None, data_dir, out_dir, *, split: str = "train",
                   limit: int | None = None, src_lang: str = "en", settings: GenerationSettings | None = None,
                   segment: bool = True, with_source: bool = True, force: bool = False, device: str = "auto",
                   dtype: str = "auto", make_translator: Callable[[str, str | None], Translate] | None = None,
                   cache: bool = True, log: Callable[[str], None] = print) -> TranslateResult:
    """Translate ``split`` of ``task`` into each of ``targets``; write JSONL + summaries; return them with the snippet.

    Args:
        task: task name (registry) or :class:`~xstilts.tasks.TaskSpec`.
        targets: languages (``"de"``), or ``"de=deu_Latn"`` to name the model's code.
        model: transformers name or folder of a seq2seq translation model; ``{lang}``
            and ``{src}`` in it are filled per target (one Marian model per pair).
        settings: batch size and generation settings (greedy by default).
        segment: translate sentence by sentence.
        with_source: also write the source-language examples in the same layout, so
            that ``intermediate.languages`` can mix them with the translations.
        force: translate again even when a language is done.
        make_translator: ``(lang, code) -> translate`` used instead of loading ``model``
            (tests, or another MT system); ``model`` then only labels the summary.
        cache: keep a translation cache file per language while it runs (resume).

    Raises:
        XstiltsError: a tagging task, an unknown language for the model, a file in the way.
    """
    from .. import tasks as registry
    from ..data import load_examples, task_file

    spec = registry.get(task) if isinstance(task, str) else task
    fam = check_family(spec.family)
    settings = settings or GenerationSettings()
    parsed = [parse_target(t) for t in targets]
    if not parsed:
        raise ConfigError("name at least one target language (--to de)")
    if len({lang for lang, _ in parsed}) != len(parsed):
        raise ConfigError(f"a target language is named twice: {targets}")
    if any(lang == src_lang for lang, _ in parsed):
        raise ConfigError(f"target {src_lang!r} is the source language (--src-lang)")
    if make_translator is None and not model:
        raise ConfigError("name a translation model (--model)")
    templated = model is not None and ("{lang}" in model or "{src}" in model)
    if model and not templated and make_translator is None:
        for lang, _ in parsed:
            check_marian_pair(model, src_lang, lang)
    out_dir = Path(out_dir)
    source_file = task_file(spec, split, src_lang, data_dir)
    examples = load_examples(spec, split, src_lang, data_dir, limit=limit)
    log(f"[translate] {spec.name} {split}: {len(examples)} {src_lang} examples from {source_file}")
    summaries: dict[str, dict] = {}
    source_jsonl = _jsonl(examples)
    base_identity = {"task": spec.name, "family": spec.family, "split": split, "limit": limit, "src_lang": src_lang,
                     "source_examples": len(examples),
                     "source_sha256": hashlib.sha256(source_jsonl.encode("utf-8")).hexdigest()[:16]}

    if with_source:
        data, summ = output_paths(out_dir, spec.name, split, src_lang)
        identity = {**base_identity, "model": None}
        same = data.exists() and Path(source_file).exists() and os.path.samefile(data, source_file)
        old = None if force else _done(data, summ, identity)
        if same:
            log(f"[translate] {src_lang}: the source file is already in place")
        elif old is not None:
            summaries[src_lang] = old
        else:
            _guard_overwrite(data, summ, [Path(source_file)])
            _atomic_write(data, source_jsonl)
            summaries[src_lang] = {"identity": identity, "task": spec.name, "split": split, "lang": src_lang,
                                   "model": None, "input": len(examples), "translated": len(examples), "dropped": {},
                                   "output": str(data)}
            _atomic_write(summ, json.dumps(summaries[src_lang], indent=2, ensure_ascii=False) + "\n")

    mt, loaded_name = None, None
    for lang, code in parsed:
        name = model.replace("{lang}", lang).replace("{src}", src_lang) if templated else model
        data, summ = output_paths(out_dir, spec.name, split, lang)
        identity = {**base_identity, "model": name, "lang": lang, "code": code, "segment": segment,
                    "markers": [list(p) for p in MARKERS] if fam.TRANSLATION == "spans" else None,
                    **settings.identity()}
        old = None if force else _done(data, summ, identity)
        if old is not None:
            log(f"[translate] {lang}: done already ({old['translated']} examples in {data}); skipped")
            summaries[lang] = old
            continue
        _guard_overwrite(data, summ, [Path(source_file)])  # the task's own file for lang: no summary, refused
        t_load = time.time()
        if make_translator is not None:
            fn, family, setup = make_translator(lang, code), "custom", None
        else:
            if mt is None or name != loaded_name:
                log(f"[translate] loading {name}")
                mt, loaded_name = MTModel(name, device=device, dtype=dtype), name
                if mt.family == "marian" and not templated and len(parsed) > 1 and not \
                        getattr(mt.tokenizer, "supported_language_codes", None):
                    raise ConfigError(f"{name!r} is a one-pair Marian model but {len(parsed)} target languages "
                                      "were named; pass --model with {lang} (e.g. 'Helsinki-NLP/opus-mt-en-{lang}') "
                                      "or use a multilingual model (NLLB, M2M100)")
            pair = mt.translator(src_lang, lang, settings, code)
            fn, family, setup = pair, mt.family, pair.setup
            mt.truncated = 0
        load_s = time.time() - t_load
        key = hashlib.sha256(json.dumps({**{k: identity[k] for k in ("model", "lang", "code", "src_lang", "num_beams",
                                                                      "max_new_tokens", "max_input_tokens")},
                                         "dtype": None if mt is None else mt.dtype},
                                        sort_keys=True).encode()).hexdigest()[:12]
        cache_path = out_dir / spec.name / f".cache-{lang}-{key}.jsonl" if cache else None
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
        cached = CachedTranslator(fn, cache_path, chunk=max(64, settings.batch_size * 16), log=log, label=f" {lang}")
        if cached.resumed:
            log(f"[translate] {lang}: resuming with {cached.resumed} texts translated before")
        t0 = time.time()
        joiner = "" if base_lang(lang) in NO_SPACE_LANGS else " "
        rows, stats = translate_examples(spec.family, examples, cached, segment=segment, joiner=joiner)
        seconds = time.time() - t0
        dropped = stats.pop("dropped")
        summary = {
            "identity": identity, "task": spec.name, "split": split, "lang": lang, "src_lang": src_lang,
            "model": name, "model_family": family,
            "lang_codes": None if setup is None else {"src": setup.src_code, "tgt": setup.tgt_code,
                                                      "forced_bos_token_id": setup.forced_bos_token_id},
            "input": len(examples), "translated": len(rows), "dropped": dropped, **stats,
            "texts": {"translated": cached.new, "reused": cached.hits, "resumed_from_cache": cached.resumed,
                      "truncated_inputs": mt.truncated if make_translator is None else None},
            "generation": {**settings.identity(), "batch_size": settings.batch_size, "segment": segment,
                           "device": mt.device if make_translator is None else None,
                           "dtype": mt.dtype if make_translator is None else None},
            "seconds": round(seconds, 3), "load_seconds": round(load_s, 3),
            "examples_per_s": round(len(examples) / seconds, 3) if seconds > 0 else None,
            "output": str(data), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if summary["translated"] + sum(dropped.values()) != summary["input"]:
            raise RuntimeError(f"translated + dropped != input: {summary}")
        _atomic_write(data, _jsonl(rows))
        _atomic_write(summ, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        if cache_path is not None and cache_path.exists():
            cache_path.unlink()
        drops = ", ".join(f"{k} {v}" for k, v in dropped.items()) or "none"
        log(f"[translate] {lang}: {len(rows)}/{len(examples)} examples -> {data} (dropped: {drops}; "
            f"{seconds:.1f}s, {summary['examples_per_s']} examples/s)")
        if examples and sum(dropped.values()) > 0.2 * len(examples):
            log(f"[translate] {lang}: WARNING: {sum(dropped.values())} of {len(examples)} examples dropped "
                f"({drops}); see {summ}")
        summaries[lang] = summary

    languages = ([src_lang] if with_source else []) + [lang for lang, _ in parsed]
    return TranslateResult(spec.name, split, out_dir, summaries,
                           config_snippet(spec, split, languages, out_dir, data_dir, src_lang=src_lang))


def config_snippet(spec, split: str, languages: list[str], out_dir, data_dir=None, *, src_lang: str = "en") -> str:
    """A ``tasks:`` + ``intermediate:`` YAML snippet defining ``<task>_mt`` over the translated files.

    The file template is relative when ``out_dir`` is the config's ``data_dir``, absolute otherwise.
    """
    out_dir = Path(out_dir).resolve()
    rel = data_dir is not None and Path(data_dir).resolve() == out_dir
    template = f"{spec.name}/{split}-{{lang}}.jsonl" if rel else str(out_dir / spec.name / f"{split}-{{lang}}.jsonl")
    q = json.dumps
    lines = ["tasks:", f"  - name: {spec.name}_mt", f"    family: {spec.family}",
             f"    languages: [{', '.join(languages)}]", f"    files: {{{split}: {q(template)}}}"]
    if spec.labels:
        lines.append(f"    labels: [{', '.join(q(x) for x in spec.labels)}]")
    if spec.metrics is not None and tuple(spec.metrics) != ("accuracy",):
        lines.append(f"    metrics: [{', '.join(spec.metrics)}]")
    if spec.head:
        lines.append(f"    head: {spec.head}")
    if spec.options:
        lines.append(f"    options: {q(spec.options)}")
    targets = [x for x in languages if x != src_lang]
    lines += ["intermediate:", f"  tasks: [{spec.name}_mt]",
              f"  languages: [{', '.join(targets)}]" + (f"  # add {src_lang} to train on the original too"
                                                        if src_lang in languages else "")]
    return "\n".join(lines) + "\n"
