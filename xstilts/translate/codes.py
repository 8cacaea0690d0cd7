"""Language codes of the translation models (NLLB, M2M100, mBART-50, Marian) and their detection.

``detect_family`` names the *translation model's* family (``nllb``, ``m2m100``, ``mbart``, ``marian``,
``generic``), not a task family.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

from ..errors import ConfigError

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
    from ..tasks.catalog.xtreme import TATOEBA_CODES

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
