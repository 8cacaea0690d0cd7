"""Machine-translate an intermediate task's training data (translate-train).

``xstilts translate squad --to de --to fr --model facebook/nllb-200-distilled-600M
--data-dir data --out data_mt`` writes ``data_mt/squad/train-de.jsonl`` (and
``-fr``) in the family-native JSON-lines layout of :mod:`xstilts.data`, a
summary ``data_mt/squad/translate-de.json`` per language, and prints a
``tasks:`` snippet that defines ``squad_mt`` for ``intermediate.languages``.

What is translated, per family (each family module declares it, ``TRANSLATION`` and
``TRANSLATABLE_FIELDS`` in :mod:`xstilts.families`; labels are never touched):

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

# The package: codes (language codes, translation-model detection), mt (the seq2seq translator, the cache),
# spans (sentences, span QA's mark and translate), task (a family's examples, a task's split).
from .codes import (  # noqa: F401
    LANG_ALIASES, LanguageSetup, NLLB_CODES, NO_SPACE_LANGS, base_lang, check_marian_pair, detect_family,
    iso3_candidates, language_setup, m2m_code, marian_target_token, mbart_code, nllb_code, parse_target,
)
from .mt import (  # noqa: F401
    CachedTranslator, GenerationSettings, MTModel, PairTranslator, Translate,
)
from .spans import (  # noqa: F401
    DROP_REASONS, MAPPED_BY, MARKERS, MARKER_VARIANTS, extract_marked, locate, sentence_spans, strip_markers,
    translate_span_qa, translate_texts,
)
from .task import (  # noqa: F401
    TranslateResult, check_family, config_snippet, output_paths, translatable_families, translate_examples,
    translate_task,
)
