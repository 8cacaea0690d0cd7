"""Data: read examples, featurize them through their family once, cache, batch.

Featurized data is cached on disk as Arrow (via ``datasets``), memory-mapped on
load, keyed by tokenizer, task (and version), split, language and max length,
so a large intermediate set streams from disk instead of sitting in Python
objects. Batches use dynamic padding and length-grouped sampling.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from . import progress
from .errors import ConfigError, DataError
from .families import get_family
from .families.base import BadField
from .io import ReadStats, file_present, read_squad
from .tasks import TaskSpec
from .families import FAMILIES


# ---------------------------------------------------------------- reading


def read_jsonl(path: Path, *, skip_invalid: bool = False, stats=None, required: tuple[str, ...] = (), **_):
    """The family-native layout: one JSON object per line with the family's fields.

    Each of ``required`` must be present and not null, empty or blank (a null
    label in a training file is an error naming its line, not a crash later).
    """
    out = []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise DataError(path, n, None, f"not a JSON object: {e}") from None
                if not isinstance(obj, dict):
                    raise DataError(path, n, None, f"expected a JSON object, got {type(obj).__name__}")
                for key in required:
                    value = obj.get(key)
                    if value is None or (isinstance(value, str) and not value.strip()) or value in ([], {}):
                        raise DataError(path, n, key, "missing" if key not in obj else f"empty ({value!r})")
                out.append(obj)
            except DataError:
                if not skip_invalid:
                    raise
                if stats is not None:
                    stats.skipped += 1
    return out


# family -> the fields every record has (each family's REQUIRED_FIELDS; kept here for readers and tests)
REQUIRED_FIELDS = {name: get_family(name).REQUIRED_FIELDS for name in FAMILIES}


def readers() -> dict:
    """Reader name -> function. The benchmark readers live in :mod:`xstilts.io`."""
    table = {"jsonl": read_jsonl}
    try:
        from . import io as r

        table.update(getattr(r, "READERS", {}))
    except ImportError:
        pass
    return table


def task_file(spec: TaskSpec, split: str, lang: str, data_dir) -> Path:
    """The file of one split and language: the first existing alternative (``.gz`` tried too).

    When none exists, the first alternative is returned so the error names it.
    A dangling symlink or a symlink loop on the way is a DataError.
    """
    if split not in spec.files:
        raise ConfigError(f"task {spec.name!r} has no split {split!r} (it has: {', '.join(spec.files) or 'none'})")
    templates = spec.files[split]
    templates = (templates,) if isinstance(templates, str) else templates
    from .tasks.catalog.xtreme import TATOEBA_CODES

    paths = []
    for template in templates:
        rel = template.format(lang=lang, split=split, lang3=TATOEBA_CODES.get(lang, lang))
        paths.append(Path(rel) if Path(rel).is_absolute() else Path(data_dir or ".") / rel)
    for path in paths:
        for candidate in (path, path.with_name(path.name + ".gz")):
            if file_present(candidate):  # a broken symlink raises: broken is not absent
                return candidate
    return paths[0]


def load_examples(spec: TaskSpec, split: str, lang: str, data_dir=None, *, limit=None, skip_invalid=False,
                  stats=None):
    """Read one split of one language as a list of family-format dicts.

    ``stats`` (a :class:`xstilts.io.ReadStats`) collects what the reader
    skipped and warned about; without it, warnings are logged.

    Raises:
        DataError: the file is missing or a record is malformed (file, line, field named).
    """
    path = task_file(spec, split, lang, data_dir)
    if not path.exists() and data_dir is None and spec.hub is not None:
        return load_from_hub(spec, split, lang, limit=limit)
    if not path.exists():
        hint = f"; {no_hub_error(spec, split, lang)}" if data_dir is None else ""
        raise DataError(path, None, None, f"file not found (task {spec.name!r}, split {split!r}, language {lang!r}){hint}")
    table = readers()
    if spec.format not in table:
        raise ConfigError(f"task {spec.name!r}: unknown format {spec.format!r}; known: {', '.join(sorted(table))}")
    family = get_family(spec.family)
    kwargs = family.reader_kwargs(spec)
    if table[spec.format] is read_jsonl:
        kwargs["required"] = family.REQUIRED_FIELDS
    if table[spec.format] is read_squad:
        # predictions are scored by question id, so evaluation files need unique ids; a training file is never
        # scored (XTREME's TyDiQA-GoldP English train reuses 89 ids for 3696 questions)
        kwargs["duplicate_ids"] = "rename" if split == "train" else "error"
    examples = table[spec.format](path, skip_invalid=skip_invalid, stats=stats, **kwargs)
    for n, e in enumerate(examples, 1):
        for key in family.REQUIRED_FIELDS:
            if key not in e:
                raise DataError(path, n, key, "missing")
        try:
            family.check_example(e, spec)
        except BadField as bad:
            raise DataError(path, n, bad.field, bad.message) from None
    if limit is not None:
        examples = examples[:limit]
    return examples


def available(spec: TaskSpec, split: str, lang: str, data_dir=None) -> bool:
    """True if ``split`` in ``lang`` can be read: (no data folder) the hub copy has it, or its file exists.

    Raises:
        ConfigError: the task has no such split.
    """
    if data_dir is None and spec.hub is not None and spec.hub.covers(split, lang):
        return True
    return task_file(spec, split, lang, data_dir).exists()


def no_hub_error(spec: TaskSpec, split: str, lang: str) -> ConfigError:
    """The task (or this split and language of it) has no public hub copy: point at a data folder."""
    if spec.hub is None:
        what = f"task {spec.name!r} has no public hub copy"
    else:
        what = f"the hub copy of {spec.name!r} ({spec.hub.dataset}) has no {split!r} split in {lang!r}"
    return ConfigError(f"{what}; give a data folder with its files (--data-dir DIR, or data_dir: in the config)")


def load_from_hub(spec: TaskSpec, split: str, lang: str, *, limit=None) -> list[dict]:
    """One split of one language from the task's hub copy (:class:`~xstilts.tasks.HubSource`), as family records.

    The family's ``HUB_FIELDS`` are read as ``spec.hub.columns`` says (absent ``OPTIONAL_FIELDS``
    get their defaults); class-label columns become their label names, then ``spec.hub.values``
    maps them onto ours. The family's ``from_hub`` converts each row and may leave it out
    (classification rows whose label is -1: no gold label, as MNLI/SNLI and GLUE test sets mark
    them, as the official readers do); its ``hub_records`` gives the list (a retrieval, aligned,
    split comes back as one ``{"source": [...], "target": [...]}`` record).

    Raises:
        ConfigError: no hub copy of this split and language, or the hub load failed.
        DataError: a row lacks a column or has a label outside the task's label set
            (named as ``hub:<dataset>/<config>[<split>]``, row number, field).
    """
    import datasets

    hub = spec.hub
    if hub is None or not hub.covers(split, lang):
        raise no_hub_error(spec, split, lang)
    from .tasks.catalog.xtreme import TATOEBA_CODES

    config = hub.config.format(lang=lang, lang3=TATOEBA_CODES.get(lang, lang), config=hub.configs.get(lang, lang)) \
        if hub.config else None
    hub_split = hub.splits[split].format(lang=lang)
    where = f"hub:{hub.dataset}" + (f"/{config}" if config else "") + f"[{hub_split}]"
    try:
        kwargs = {"revision": hub.revision} if hub.revision else {}
        ds = datasets.load_dataset(hub.dataset, config, split=hub_split, **kwargs)
    except Exception as e:  # network, unknown id/config/split: one line, not a traceback
        raise ConfigError(f"{where}: datasets.load_dataset failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                          f"for offline use give a data folder (--data-dir DIR, or data_dir: in the config)") from None
    if hub.row_filter:
        column, prefixes = hub.row_filter
        ds = ds.filter(lambda v: str(v).startswith(prefixes[lang]), input_columns=[column])
    if limit is not None:  # (no family drops rows before the limit: an aligned split keeps its first pairs)
        ds = ds.select(range(min(limit, len(ds))))
    names = {col: _class_names(feat) for col, feat in ds.features.items()}
    family = get_family(spec.family)
    optional = family.OPTIONAL_FIELDS
    out = []
    for n, row in enumerate(ds, 1):
        ex = {}
        for key in family.HUB_FIELDS:
            source = hub.columns.get(key, key)
            try:
                value = _hub_value(row, source, names)
            except KeyError as e:
                if key in optional and source == key:
                    ex[key] = optional[key]
                    continue
                raise DataError(where, n, key, f"no column {e.args[0]!r} in the hub rows (columns: "
                                               f"{', '.join(ds.column_names)}); fix the task's HubSource.columns") from None
            if key in hub.values:
                table = hub.values[key]
                if value in table:
                    value = table[value]
                elif value not in (-1, ""):  # -1 / "": no gold label
                    raise DataError(where, n, key, f"value {value!r} not in the mapping ({', '.join(map(str, table))})")
            ex[key] = value
        try:
            ex = family.from_hub(ex, spec)
        except BadField as bad:
            raise DataError(where, n, bad.field, bad.message) from None
        if ex is not None:  # None: no gold label (unlabelled test rows)
            out.append(ex)
    return family.hub_records(out)


def _class_names(feature):
    """Label names of a ClassLabel column (or a list of them), else None."""
    import datasets

    inner = getattr(feature, "feature", feature)
    return inner.names if isinstance(inner, datasets.ClassLabel) else None


def _hub_value(row: dict, source, names: dict):
    """One family field from a hub row (see HubSource.columns); KeyError names the missing column."""
    if isinstance(source, tuple):
        return [_hub_value(row, s, names) for s in source]
    if "{" in source:
        try:
            return source.format(**row)
        except KeyError as e:
            raise KeyError(e.args[0]) from None
    column, *path = source.split(".")
    if column not in row:
        raise KeyError(column)
    value = row[column]
    for part in path:
        if not isinstance(value, dict) or part not in value:
            raise KeyError(source)
        value = value[part]
    table = names.get(column) if not path else None
    if table is not None:  # class-label ids -> names (-1 stays: no gold label)
        value = [table[v] for v in value] if isinstance(value, list) else (table[value] if value >= 0 else -1)
    return value


def load_aligned(spec: TaskSpec, split: str, lang: str, data_dir=None) -> dict:
    """An aligned retrieval split (Tatoeba): ``{"source": [xx sentences], "target": [English]}``, files or hub."""
    from . import io as readers

    src = task_file(spec, split, lang, data_dir)
    if not src.exists() and data_dir is None:
        return load_from_hub(spec, split, lang)[0]
    return readers.read_tatoeba(src, task_file(spec, f"{split}_target", lang, data_dir))


# ---------------------------------------------------------------- featurize + cache


@dataclasses.dataclass(frozen=True)
class TokenIds:
    """The special ids collate functions need."""

    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int | None
    vocab_size: int

    @classmethod
    def of(cls, tokenizer) -> "TokenIds":
        return cls(tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
                   tokenizer.mask_token_id, len(tokenizer))


def tokenizer_fingerprint(tokenizer) -> str:
    fp = getattr(tokenizer, "_xstilts_fingerprint", None)
    if fp is None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        body = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
        fp = hashlib.sha256(body.encode()).hexdigest()[:16]
        tokenizer._xstilts_fingerprint = fp
    return fp


def featurized(spec: TaskSpec, examples: list[dict], tokenizer, *, max_length: int, cache_dir,
               source_key: str, stride: int | None = None):
    """Featurize ``examples`` through the family, once; later calls load the memory-mapped cache.

    Args:
        source_key: identifies the examples (file, split, language, limit) in the cache key.

    Returns:
        A ``datasets.Dataset`` with the family's columns plus ``length``.
    """
    from .distributed import main_process_first

    with main_process_first():  # under accelerate launch rank 0 builds the cache; the others then load it
        return _featurized(spec, examples, tokenizer, max_length=max_length, cache_dir=cache_dir,
                           source_key=source_key, stride=stride)


def _featurized(spec: TaskSpec, examples: list[dict], tokenizer, *, max_length: int, cache_dir,
                source_key: str, stride: int | None = None):
    import datasets

    family = get_family(spec.family)
    key = hashlib.sha256(json.dumps([
        tokenizer_fingerprint(tokenizer), spec.name, spec.version, spec.family, family.FEATURIZE_VERSION,
        sorted(spec.labels), max_length, stride, source_key,
    ]).encode()).hexdigest()[:20]
    path = Path(cache_dir) / "features" / f"{spec.name}-{key}"
    if (path / "dataset_info.json").exists():
        return datasets.load_from_disk(str(path))
    stride = family.effective_stride(examples, tokenizer, max_length, stride)  # span QA: from the longest question
    # Featurize CHUNK examples at a time into memory-mapped Arrow shards, so a 1M-example set never sits
    # in Python lists (measured by bench/: 8.7 GB -> 0.3 GB peak above baseline for 1M pairs).
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shards_dir = tmp.with_name(tmp.name + ".shards")
    for d in (tmp, shards_dir):
        shutil.rmtree(d, ignore_errors=True)
    shards = []
    bar = progress.bar(len(examples), f"featurize {spec.name}", unit="ex", plain=False)  # a terminal only
    for start in range(0, max(len(examples), 1), CHUNK):
        cols = family.featurize(examples[start : start + CHUNK], tokenizer, spec, max_length, stride)
        bar.update(len(examples[start : start + CHUNK]))
        cols["example_idx"] = [i + start for i in cols["example_idx"]]
        cols["length"] = [len(x) for x in cols["input_ids"]]
        shard_path = shards_dir / f"{len(shards):05d}"
        datasets.Dataset.from_dict(cols).save_to_disk(str(shard_path))
        del cols
        shards.append(datasets.load_from_disk(str(shard_path)))
    bar.close()
    ds = datasets.concatenate_datasets(shards) if len(shards) > 1 else shards[0]
    ds.save_to_disk(str(tmp))
    del ds, shards
    shutil.rmtree(shards_dir, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return datasets.load_from_disk(str(path))


CHUNK = 10_000
TRUNCATION_COLUMNS = ("truncated_context", "truncated_choice")  # written by multiple-choice featurization


def truncation_summary(rows) -> dict | None:
    """What featurization cut from ``rows`` (a featurized dataset), for a phase summary.

    Returns:
        ``{"examples", "examples_truncated", "context", "choice"}``: examples, examples with any
        sequence cut, and sequences (one per choice) whose context / whose choice was cut; None for
        families that record no truncation.
    """
    cols = [c for c in TRUNCATION_COLUMNS if c in rows.column_names]
    if not cols:
        return None
    counts = {c: np.asarray(rows[c], dtype=np.int64) for c in cols}
    out = {"examples": len(rows), "examples_truncated": int((sum(counts.values()) > 0).sum())}
    out.update({c.removeprefix("truncated_"): int(v.sum()) for c, v in counts.items()})
    return out


# ---------------------------------------------------------------- batching


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                           group: bool = True) -> list[np.ndarray]:
    """Shuffled batches of indices; with ``group``, rows of similar length share a batch.

    Indices are shuffled, cut into mega-batches of 50 batches, sorted by length
    inside each mega-batch, cut into batches, and the batches shuffled. The order
    depends only on (seed, epoch), so a resumed run replays it exactly.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if group:
        mega = batch_size * 50
        order = np.concatenate([
            chunk[np.argsort(-lengths[chunk], kind="stable")]
            for chunk in np.array_split(order, max(1, -(-len(order) // mega)))
        ]) if len(order) else order
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if group:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Evaluation batches sorted by length (least padding); order does not matter."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def mixture_probabilities(sizes: dict[str, int], rule: str, cap: int | None = None,
                          temperature: float = 1.0) -> dict[str, float]:
    """Sampling rate per task.

    * ``proportional``: p ~ n
    * ``capped``: p ~ min(n, cap)
    * ``temperature``: p ~ min(n, cap) ** (1 / T)  (cap optional)
    * ``uniform``: p = 1 / K
    """
    n = np.array([sizes[k] for k in sizes], dtype=float)
    if rule == "proportional":
        w = n
    elif rule == "capped":
        if cap is None:
            raise ConfigError("mixture rule 'capped' needs 'cap'")
        w = np.minimum(n, cap)
    elif rule == "temperature":
        w = np.minimum(n, cap if cap else np.inf) ** (1.0 / temperature)
    elif rule == "uniform":
        w = np.ones_like(n)
    else:
        raise ConfigError(f"unknown mixture rule {rule!r}; rules: proportional, capped, temperature, uniform")
    w = w / w.sum()
    return {k: float(p) for k, p in zip(sizes, w)}


# ---------------------------------------------------------------- data check


def check(data_dir, task_names: list[str] | None = None, count: bool = True, skip_invalid: bool = False) -> list[dict]:
    """What is present under ``data_dir``: one row per task, split and language.

    Rows: ``task, split, lang, path, present, examples, warnings`` (``examples``
    is None when the file is missing or ``count`` is off; ``warnings`` are the
    readers' located warnings). Malformed files raise :class:`DataError`
    naming file, line and field, unless ``skip_invalid``.
    """
    from . import tasks as registry

    out = []
    for name in task_names or registry.names():
        spec = registry.get(name)
        languages = spec.languages or ("en",)
        for split in spec.files:
            if "_" in split and split.rsplit("_", 1)[1] in ("target", "gold"):
                continue  # companion files of a retrieval split
            langs = [spec.train_lang] if split == "train" else languages
            for lang in langs:
                path = task_file(spec, split, lang, data_dir)
                n, stats = None, ReadStats()
                if path.exists() and count:
                    n = _count(spec, split, lang, data_dir, skip_invalid, stats)
                out.append({"task": name, "split": split, "lang": lang, "path": str(path),
                            "present": path.exists(), "examples": n, "warnings": stats.warnings})
    return out


def _count(spec: TaskSpec, split: str, lang: str, data_dir, skip_invalid: bool, stats) -> int:
    return get_family(spec.family).count_examples(
        spec, split, lang, lambda s, l: task_file(spec, s, l, data_dir),
        lambda: load_examples(spec, split, lang, data_dir, skip_invalid=skip_invalid, stats=stats))
