"""Machine-translate an intermediate task's training data (translate-train).

``xstilts translate squad --to de --to fr --model facebook/nllb-200-distilled-600M
--data-dir data --out data_mt`` writes ``data_mt/squad/train-de.jsonl`` (and
``-fr``) in the family-native JSON-lines layout of :mod:`xstilts.data`, a
summary ``data_mt/squad/translate-de.json`` per language, and prints a
``tasks:`` snippet that defines ``squad_mt`` for ``intermediate.languages``.

What is translated, per family (labels are never touched):

* classification: ``text_a`` and ``text_b``;
* multiple_choice: ``context``, ``question`` and every choice;
* span_qa: ``question`` and ``context``; the answer span is carried across by
  *mark and translate* (:func:`translate_span_qa`): the answer is wrapped in
  markers (``[`` ``]`` by default), the context translated, the markers found
  and stripped. When the markers are lost, the answer is translated on its own
  and searched in the translated context (exact, then case-insensitive, then
  the untranslated answer, e.g. names and numbers); when that fails too the
  example is dropped and counted by reason in the summary;
* tagging (and retrieval, mlm): rejected; a word-level label sequence does not
  survive translation.

Long texts are split into sentences (``segment=True``) and translated sentence
by sentence, so nothing is cut at the model's input length and a SQuAD
paragraph shared by several questions is translated once; only the sentence
holding the marked answer is translated per question.

Translation model families (detected from ``config.model_type`` and the
tokenizer class): NLLB (``deu_Latn`` codes, :func:`nllb_code`), M2M100
(``de``, :func:`m2m_code`), mBART-50 (``de_DE``), Marian (one model per pair;
``--model 'Helsinki-NLP/opus-mt-en-{lang}'`` loads one per target; a
multi-target Marian model gets its ``>>deu<<`` token) and any other seq2seq
model as is.

Every translation goes through :class:`CachedTranslator`: texts are
de-duplicated, sorted by length, translated in chunks and appended to a cache
file, so an interrupted language resumes where it stopped; a language whose
output and summary exist with the same settings is skipped.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

from .errors import ConfigError, XstiltsError

Translate = Callable[[list[str]], list[str]]

TRANSLATABLE_FAMILIES = ("classification", "multiple_choice", "span_qa")

# ---------------------------------------------------------------- language codes

#: ISO 639-1 (and a few regional forms) -> NLLB-200 code, for the XTREME / XTREME-R languages and other common ones.
NLLB_CODES = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "az": "azj_Latn", "be": "bel_Cyrl", "bg": "bul_Cyrl",
    "bn": "ben_Beng", "bs": "bos_Latn", "ca": "cat_Latn", "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn",
    "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "eo": "epo_Latn", "es": "spa_Latn", "et": "est_Latn",
    "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "ga": "gle_Latn", "gl": "glg_Latn",
    "gu": "guj_Gujr", "ha": "hau_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn", "ht": "hat_Latn",
    "hu": "hun_Latn", "hy": "hye_Armn", "id": "ind_Latn", "ig": "ibo_Latn", "is": "isl_Latn", "it": "ita_Latn",
    "ja": "jpn_Jpan", "jv": "jav_Latn", "ka": "kat_Geor", "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda",
    "ko": "kor_Hang", "ky": "kir_Cyrl", "lo": "lao_Laoo", "lt": "lit_Latn", "lv": "lvs_Latn", "mk": "mkd_Cyrl",
    "ml": "mal_Mlym", "mn": "khk_Cyrl", "mr": "mar_Deva", "ms": "zsm_Latn", "mt": "mlt_Latn", "my": "mya_Mymr",
    "ne": "npi_Deva", "nl": "nld_Latn", "no": "nob_Latn", "nb": "nob_Latn", "nn": "nno_Latn", "pa": "pan_Guru",
    "pl": "pol_Latn", "ps": "pbt_Arab", "pt": "por_Latn", "qu": "quy_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl",
    "si": "sin_Sinh", "sk": "slk_Latn", "sl": "slv_Latn", "so": "som_Latn", "sq": "als_Latn", "sr": "srp_Cyrl",
    "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu", "tg": "tgk_Cyrl", "th": "tha_Thai",
    "tl": "tgl_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn",
    "wo": "wol_Latn", "xh": "xho_Latn", "yo": "yor_Latn", "zh": "zho_Hans", "zu": "zul_Latn",
    "zh-cn": "zho_Hans", "zh-hans": "zho_Hans", "zh-tw": "zho_Hant", "zh-hk": "zho_Hant", "zh-hant": "zho_Hant",
    "yue": "yue_Hant",
}

#: Retired or alternative ISO codes -> the code M2M100 / NLLB tables use.
LANG_ALIASES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "fil": "tl", "nb": "no", "zh-cn": "zh", "zh-hans": "zh"}

#: Languages written without spaces between sentences.
NO_SPACE_LANGS = {"zh", "ja", "yue", "wuu"}

_NLLB_CODE_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


def parse_target(arg: str) -> tuple[str, str | None]:
    """``"de"`` -> ``("de", None)``; ``"de=deu_Latn"`` -> ``("de", "deu_Latn")`` (name in files = model code)."""
    lang, _, code = arg.strip().partition("=")
    lang, code = lang.strip(), code.strip() or None
    if not lang or not re.fullmatch(r"[A-Za-z0-9_-]+", lang):
        raise ConfigError(f"--to {arg!r}: expected a language like 'de' or 'de=deu_Latn'")
    return lang, code


def base_lang(lang: str) -> str:
    """``"zh-TW"`` -> ``"zh"``; ``"pt_BR"`` -> ``"pt"``; retired codes mapped (``"iw"`` -> ``"he"``)."""
    low = lang.strip().lower().replace("_", "-")
    low = LANG_ALIASES.get(low, low)
    return LANG_ALIASES.get(low.split("-")[0], low.split("-")[0])


def nllb_code(lang: str) -> str:
    """The NLLB-200 code of an ISO 639-1 code (``"de"`` -> ``"deu_Latn"``); NLLB codes pass through."""
    if _NLLB_CODE_RE.match(lang):
        return lang
    low = lang.strip().lower().replace("_", "-")
    for key in (low, LANG_ALIASES.get(low, low), base_lang(lang)):
        if key in NLLB_CODES:
            return NLLB_CODES[key]
    raise ConfigError(f"no NLLB code known for language {lang!r}; name it explicitly, e.g. --to {lang}=xxx_Latn "
                      "(codes like deu_Latn, zho_Hans: see the model card)")


def m2m_code(lang: str) -> str:
    """The M2M100 code of a language: ISO 639-1 without region (``"zh-TW"`` -> ``"zh"``, ``"iw"`` -> ``"he"``)."""
    if _NLLB_CODE_RE.match(lang):
        raise ConfigError(f"{lang!r} is an NLLB code; M2M100 uses ISO 639-1 codes like 'de'")
    return base_lang(lang)


def iso3_candidates(lang: str) -> list[str]:
    """ISO 639-3 spellings of a language, as OPUS-MT multi-target models name them (``>>deu<<``, ``>>cmn_Hans<<``)."""
    from .tasks.catalog.xtreme import TATOEBA_CODES

    b = base_lang(lang)
    out = [TATOEBA_CODES[b]] if b in TATOEBA_CODES else []
    if b in NLLB_CODES:
        out.append(NLLB_CODES[b][:3])
    return list(dict.fromkeys(out))


def marian_target_token(lang: str, supported: Iterable[str], code: str | None = None) -> str | None:
    """The ``>>xx<<`` token a multi-target Marian model needs for ``lang``; None for a one-pair model.

    ``supported`` is the tokenizer's ``supported_language_codes`` (empty for a one-pair model).
    """
    supported = list(supported)
    if not supported:
        return None
    names = [code] if code else [lang, base_lang(lang), *iso3_candidates(lang)]
    for name in names:
        tok = name if name.startswith(">>") else f">>{name}<<"
        if tok in supported:
            return tok
    for name in names[1:] if not code else []:  # >>cmn_Hans<< for zh
        hits = [t for t in supported if t.startswith(f">>{name}_")]
        if hits:
            return sorted(hits)[0]
    shown = ", ".join(supported[:30]) + (" ..." if len(supported) > 30 else "")
    raise ConfigError(f"this Marian model has no target token for {lang!r}; name one with --to {lang}=CODE "
                      f"(it knows: {shown})")


def mbart_code(lang: str, codes: Iterable[str]) -> str:
    """The mBART-50 code (``"de"`` -> ``"de_DE"``) among the tokenizer's ``codes``; codes pass through."""
    codes = list(codes)
    if lang in codes:
        return lang
    hits = sorted(c for c in codes if c.split("_")[0] == base_lang(lang))
    if not hits:
        raise ConfigError(f"this mBART model has no language code for {lang!r}; name one with --to {lang}=xx_XX")
    return hits[0]


def detect_family(model_type: str, tokenizer_class: str) -> str:
    """``nllb``, ``m2m100``, ``mbart``, ``marian`` or ``generic`` (no language handling).

    NLLB checkpoints are ``m2m_100`` models with an NLLB tokenizer, hence the tokenizer class.
    """
    tc = tokenizer_class.lower()
    if "nllb" in tc or model_type.startswith("nllb"):
        return "nllb"
    if model_type == "m2m_100" or "m2m100" in tc:
        return "m2m100"
    if model_type == "marian" or "marian" in tc:
        return "marian"
    if model_type == "mbart" and ("mbart50" in tc or "mbart" in tc):
        return "mbart"
    return "generic"


@dataclasses.dataclass
class LanguageSetup:
    """How one model is steered from ``src`` into ``tgt``."""

    family: str
    src_code: str | None = None
    tgt_code: str | None = None
    forced_bos_token_id: int | None = None
    prefix: str = ""  # prepended to every source text (Marian multi-target)
    strip_ids: frozenset = frozenset()  # token ids removed before decoding (language tokens)


def language_setup(family: str, tokenizer, src: str, tgt: str, tgt_code: str | None = None,
                   src_code: str | None = None) -> LanguageSetup:
    """Codes, forced BOS token and prefix for translating ``src`` -> ``tgt``; sets ``tokenizer.src_lang``.

    Raises:
        ConfigError: the model does not know the language (the message says how to name a code).
    """
    specials = frozenset(getattr(tokenizer, "all_special_ids", None) or ())
    if family == "nllb":
        s, t = src_code or nllb_code(src), tgt_code or nllb_code(tgt)
        ids = {}
        for code in (s, t):
            i = tokenizer.convert_tokens_to_ids(code)
            if i is None or i == tokenizer.unk_token_id:
                raise ConfigError(f"the NLLB tokenizer has no language code {code!r}; name one with --to LANG=xxx_Xxxx")
            ids[code] = i
        tokenizer.src_lang = s
        return LanguageSetup(family, s, t, ids[t], strip_ids=specials | set(ids.values()))
    if family == "m2m100":
        s, t = src_code or m2m_code(src), tgt_code or m2m_code(tgt)
        known = getattr(tokenizer, "lang_code_to_id", None) or {}
        for code in (s, t):
            if known and code not in known:
                raise ConfigError(f"M2M100 has no language {code!r} (it has {len(known)}: "
                                  f"{', '.join(sorted(known))}); NLLB covers more languages")
        tokenizer.src_lang = s
        return LanguageSetup(family, s, t, tokenizer.get_lang_id(t), strip_ids=specials | set(known.values()))
    if family == "mbart":
        known = getattr(tokenizer, "lang_code_to_id", None) or {}
        codes = list(known) or [x for x in getattr(tokenizer, "additional_special_tokens", None) or ()
                                if re.fullmatch(r"[a-z]{2,3}_[A-Z]{2}", x)]
        s, t = src_code or mbart_code(src, codes), tgt_code or mbart_code(tgt, codes)
        tokenizer.src_lang = s
        tid = tokenizer.convert_tokens_to_ids(t)
        return LanguageSetup(family, s, t, tid, strip_ids=specials | {tokenizer.convert_tokens_to_ids(c) for c in codes})
    if family == "marian":
        token = marian_target_token(tgt, getattr(tokenizer, "supported_language_codes", None) or (), tgt_code)
        return LanguageSetup(family, src, token or tgt, prefix=f"{token} " if token else "", strip_ids=specials)
    return LanguageSetup(family, src, tgt_code or tgt, strip_ids=specials)


def check_marian_pair(model_name: str, src: str, tgt: str) -> None:
    """A ``opus-mt-en-de`` model asked for French is a mistake; say how to get one model per language."""
    m = re.search(r"opus-mt-(?:tc-big-|tc-base-)?([A-Za-z]+)-([A-Za-z]+)$", str(model_name).rstrip("/"))
    if not m:
        return
    msrc, mtgt = m.groups()
    if re.fullmatch(r"[a-z]{2}", mtgt) and mtgt != base_lang(tgt):
        raise ConfigError(f"model {model_name!r} translates into {mtgt!r}, not {tgt!r}; for several target "
                          f"languages pass --model with {{lang}}, e.g. 'Helsinki-NLP/opus-mt-{msrc}-{{lang}}', "
                          "or use a multilingual model (NLLB, M2M100)")
    if re.fullmatch(r"[a-z]{2}", msrc) and msrc != base_lang(src):
        raise ConfigError(f"model {model_name!r} translates from {msrc!r}, not {src!r} (--src-lang)")


# ---------------------------------------------------------------- the seq2seq translator


@dataclasses.dataclass(frozen=True)
class GenerationSettings:
    """Generation settings; all but ``batch_size`` are part of the output's identity."""

    batch_size: int = 16
    num_beams: int = 1
    max_new_tokens: int | None = None  # None: 1.5 x the longest input of the batch + 10
    max_input_tokens: int = 512

    def identity(self) -> dict:
        return {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                "max_input_tokens": self.max_input_tokens}


def _device_and_dtype(device: str, dtype: str):
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bf16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "fp32"
    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if dtype not in table:
        raise ConfigError(f"--dtype {dtype!r}: one of auto, {', '.join(table)}")
    return device, dtype, table[dtype]


class MTModel:
    """A loaded seq2seq model and tokenizer; :meth:`translator` makes a ``list[str] -> list[str]`` for one pair."""

    def __init__(self, name: str, *, device: str = "auto", dtype: str = "auto"):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from .extras import require

        require("sentencepiece", "xstilts translate (the translation models' tokenizers)")
        self.name = str(name)
        self.device, self.dtype, torch_dtype = _device_and_dtype(device, dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load the tokenizer of translation model {self.name!r}: {e}") from None
        try:
            self.model = AutoModelForSeq2SeqLM.from_pretrained(self.name, dtype=torch_dtype)
        except ValueError as e:
            raise ConfigError(f"{self.name!r} is not a seq2seq translation model: {str(e).splitlines()[0]}") from None
        except OSError as e:
            raise ConfigError(f"cannot load translation model {self.name!r}: {e}") from None
        self.model.to(self.device).eval()
        self.family = detect_family(self.model.config.model_type, type(self.tokenizer).__name__)
        self.truncated = 0

    def translator(self, src: str, tgt: str, settings: GenerationSettings, tgt_code: str | None = None) -> "PairTranslator":
        return PairTranslator(self, language_setup(self.family, self.tokenizer, src, tgt, tgt_code), settings)


class PairTranslator:
    """Translates batches of texts with one model in one direction."""

    def __init__(self, mt: MTModel, setup: LanguageSetup, settings: GenerationSettings):
        self.mt, self.setup, self.settings = mt, setup, settings
        positions = getattr(mt.model.config, "max_position_embeddings", None) or 1024
        self.max_input = min(settings.max_input_tokens, positions)
        self.max_output = positions

    def __call__(self, texts: list[str]) -> list[str]:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[str] = [""] * len(texts)
        bs = self.settings.batch_size
        for k in range(0, len(order), bs):
            idx = order[k : k + bs]
            for i, t in zip(idx, self._generate([texts[i] for i in idx])):
                out[i] = t
        return out

    def _generate(self, texts: list[str]) -> list[str]:
        import torch

        try:
            return self._generate_batch(texts)
        except torch.cuda.OutOfMemoryError:
            if len(texts) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(texts) // 2
            return self._generate(texts[:half]) + self._generate(texts[half:])

    def _generate_batch(self, texts: list[str]) -> list[str]:
        import torch

        tok, s = self.mt.tokenizer, self.setup
        if s.family in ("nllb", "m2m100", "mbart"):
            tok.src_lang = s.src_code  # another PairTranslator of the same model may have changed it
        enc = tok([s.prefix + t for t in texts], return_tensors="pt", padding=True, truncation=True,
                  max_length=self.max_input)
        lengths = enc["attention_mask"].sum(1)
        self.mt.truncated += int((lengths >= self.max_input).sum())
        enc = {k: v.to(self.mt.device) for k, v in enc.items()}
        new = self.settings.max_new_tokens or int(1.5 * int(lengths.max()) + 10)
        kwargs = {"num_beams": self.settings.num_beams, "max_new_tokens": min(new, self.max_output), "do_sample": False}
        if s.forced_bos_token_id is not None:
            kwargs["forced_bos_token_id"] = s.forced_bos_token_id
        with torch.inference_mode():
            ids = self.mt.model.generate(**enc, **kwargs)
        rows = [[i for i in row if i not in s.strip_ids] for row in ids.tolist()]
        return [t.strip() for t in tok.batch_decode(rows, skip_special_tokens=True, clean_up_tokenization_spaces=False)]


# ---------------------------------------------------------------- dedupe, cache, progress


class CachedTranslator:
    """Wraps a ``translate`` callable: de-duplicates, skips empty texts, caches (on disk too), shows progress.

    New texts are sorted by length and sent in chunks of ``chunk``; each chunk's
    results are appended to ``cache_path`` (JSON lines ``[source, translation]``)
    so that a rerun after an interruption translates only what is missing.
    """

    def __init__(self, translate: Translate, cache_path: Path | None = None, *, chunk: int = 512,
                 log: Callable[[str], None] | None = None, label: str = ""):
        self.translate, self.cache_path, self.chunk, self.log, self.label = translate, cache_path, chunk, log, label
        self.cache: dict[str, str] = {}
        self.hits = self.new = 0
        if cache_path is not None and cache_path.exists():
            with open(cache_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        s, t = json.loads(line)
                    except (ValueError, TypeError):
                        continue  # a line cut by an interruption
                    self.cache[s] = t
            self.resumed = len(self.cache)
        else:
            self.resumed = 0

    def __call__(self, texts: list[str]) -> list[str]:
        todo = sorted({t for t in texts if t.strip() and t not in self.cache}, key=lambda t: (len(t), t))
        self.hits += sum(1 for t in set(texts) if t in self.cache)
        t0 = last = time.time()
        done = 0
        for k in range(0, len(todo), self.chunk):
            part = todo[k : k + self.chunk]
            got = self.translate(part)
            if len(got) != len(part):
                raise RuntimeError(f"translate returned {len(got)} texts for {len(part)}")
            self.cache.update(zip(part, got))
            if self.cache_path is not None:
                with open(self.cache_path, "a", encoding="utf-8") as f:
                    f.write("".join(json.dumps([s, t], ensure_ascii=False) + "\n" for s, t in zip(part, got)))
            done += len(part)
            self.new += len(part)
            if self.log and len(todo) > self.chunk and (time.time() - last > 30 or done == len(todo)):
                last = time.time()
                rate = done / max(last - t0, 1e-9)
                self.log(f"[translate{self.label}] {done}/{len(todo)} texts, {rate:.1f}/s, "
                         f"about {(len(todo) - done) / rate:.0f}s left")
        return [self.cache.get(t, "") if t.strip() else "" for t in texts]


def _translate_unique(translate: Translate, texts: Iterable[str]) -> dict[str, str]:
    """One call of ``translate`` on the distinct non-empty texts; text -> translation."""
    todo = list(dict.fromkeys(t for t in texts if t and t.strip()))
    got = translate(todo) if todo else []
    if len(got) != len(todo):
        raise RuntimeError(f"translate returned {len(got)} texts for {len(todo)}")
    return dict(zip(todo, [g.strip() for g in got]))


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


# ---------------------------------------------------------------- families


def translate_examples(family: str, examples: list[dict], translate: Translate, *, segment: bool = True,
                       joiner: str = " ") -> tuple[list[dict], dict]:
    """Translate the text fields of ``family`` examples; labels and other fields are kept.

    Returns ``(kept examples, stats)`` with ``stats["dropped"]`` reason -> count
    (an example whose non-empty text came back empty is dropped as
    ``empty_translation``); span QA adds the mapping counts of :func:`translate_span_qa`.

    Raises:
        XstiltsError: a family whose labels do not survive translation (tagging) or that has no training text.
    """
    check_family(family)
    if family == "span_qa":
        return translate_span_qa(examples, translate, segment=segment, joiner=joiner)
    if family == "classification":
        fields = [[e.get("text_a") or "", e.get("text_b") or ""] for e in examples]
    else:
        fields = [[e.get("context") or "", e.get("question") or "", *[c or "" for c in e["choices"]]] for e in examples]
    flat = translate_texts([t for fs in fields for t in fs], translate, segment=segment, joiner=joiner)
    out, dropped, k = [], Counter(), 0
    for e, fs in zip(examples, fields):
        got, k = flat[k : k + len(fs)], k + len(fs)
        if any(src.strip() and not t for src, t in zip(fs, got)):
            dropped["empty_translation"] += 1
            continue
        if family == "classification":
            new = {**e, "text_a": got[0]}
            if e.get("text_b") is not None:
                new["text_b"] = got[1]
        else:
            new = {**e, "choices": got[2:]}
            for key, value in (("context", got[0]), ("question", got[1])):
                if e.get(key) is not None:
                    new[key] = value
        out.append(new)
    return out, {"dropped": dict(dropped)}


def check_family(family: str) -> None:
    if family == "tagging":
        raise XstiltsError("tagging tasks cannot be machine-translated: their labels belong to source words, and "
                           "a translation has other words in another order (there is no label-preserving "
                           "translation); use the English task, or a tagging task with data in the target language")
    if family not in TRANSLATABLE_FAMILIES:
        raise XstiltsError(f"the {family} family is not translated (translatable: {', '.join(TRANSLATABLE_FAMILIES)})")


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
    from . import tasks as registry
    from .data import load_examples, task_file

    spec = registry.get(task) if isinstance(task, str) else task
    check_family(spec.family)
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
                    "markers": [list(p) for p in MARKERS] if spec.family == "span_qa" else None,
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
