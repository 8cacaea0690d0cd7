"""The seq2seq translator (:class:`MTModel`, :class:`PairTranslator`) and :class:`CachedTranslator`
(de-duplication, an on-disk cache an interrupted run resumes from, progress)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Iterable

from ..errors import ConfigError
from .codes import LanguageSetup, detect_family, language_setup

Translate = Callable[[list[str]], list[str]]

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

        from ..extras import require

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
