"""Offline demo data from CLDR locale data (shipped with Babel): no network, no downloads.

CLDR translates the *names* of countries, languages, currencies, time-zone
cities and measurement units into hundreds of locales. That is enough for a
small but real cross-lingual experiment:

* **Target task** ``cldr_category`` (single-text classification, 5 labels):
  which kind of thing does this name denote: ``country``, ``language``,
  ``currency``, ``city`` or ``unit``? ``"Moskau"`` -> city, ``"Japanischer
  Yen"`` -> currency. English training data is deliberately *few-shot* (4
  names per label by default); evaluation is zero-shot on the names of unseen
  items in other languages.
* **Intermediate task** ``cldr_is_a`` (English text-pair classification,
  ``yes`` / ``no``): "is <name> <kind>?", e.g. ``("Bucharest", "a city")`` ->
  yes, ``("Spain", "a unit of measurement")`` -> no, over eight kinds: the five
  target kinds plus writing systems, time zones and world regions. About 3,400
  questions built from English names of items that are *not* test or dev items.
* **Alternative intermediate task** ``cldr_same_category`` (English text pairs,
  ``same`` / ``different``): do two English names denote the same kind of
  thing? Measured with the quickstart's settings it did not help zero-shot
  transfer (it helped English a little and hurt the other languages), so it is
  not the default; it is kept for comparison.

Items (a territory code, a language code, a currency code, a time zone, a unit
id) are split once: test and dev items never appear in any training file, in
any language. Non-English test files leave out names spelt exactly as in
English (``"Berlin"``, ``"Euro"``), so the zero-shot numbers measure transfer,
not string matching. Names shared by two different items of one language are
dropped everywhere.

This is a demonstration that the machinery works end to end on a real
pretrained encoder, not a benchmark: the labels are trivially derived from the
source of each name, and the numbers say nothing about XNLI or XCOPA.

Files written under ``out_dir`` (family-native JSONL)::

    cldr_category/train-en.jsonl        few-shot English target training
    cldr_category/dev-en.jsonl          English dev (model selection)
    cldr_category/test-{lang}.jsonl     zero-shot test, one file per language (English too)
    cldr_is_a/train-en.jsonl            English intermediate questions (default intermediate task)
    cldr_same_category/train-en.jsonl   English same-kind pairs (alternative intermediate task)
    manifest.json                       parameters, counts, versions
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import ConfigError

#: Bump when the files written for the same parameters change.
DATA_VERSION = 5

CATEGORIES = ("country", "language", "currency", "city", "unit")
PAIR_LABELS = ("same", "different")
#: Zero-shot languages of the quickstart: 3 Latin-script, 5 other scripts.
DEFAULT_LANGUAGES = ("de", "fr", "es", "ru", "ja", "ar", "hi", "zh")
TARGET_TASK = "cldr_category"
SAME_CATEGORY_TASK = "cldr_same_category"
IS_A_TASK = "cldr_is_a"
YES_NO = ("yes", "no")
#: "Is <name> <kind>?" phrases of the is-a task: the target kinds, and three more kinds of CLDR names.
KIND_PHRASES = {"country": "a country", "language": "a language", "currency": "a currency", "city": "a city",
                "unit": "a unit of measurement", "script": "a writing system", "time_zone": "a time zone",
                "region": "a world region"}

_REGION_CODES = {"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB", "AQ", "BV", "HM"}  # regions, and lands without people
_SPECIAL_LANGUAGES = {"mul", "und", "zxx", "mis"}  # "Multiple languages", "Unknown language", ...


@dataclass(frozen=True)
class DemoParams:
    """What to build. Everything is a pure function of these and the installed Babel's CLDR data."""

    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    shots: int = 4  # English target training names per category
    dev_per_class: int = 8  # English dev names per category
    test_per_class: int = 40  # test items per category (per language; fewer where names equal English)
    pairs: int = 4000  # English intermediate examples to draw per task, half positive
    seed: int = 0

    def digest(self) -> str:
        babel = _babel()

        blob = json.dumps({**asdict(self), "data_version": DATA_VERSION, "babel": babel.__version__}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class DemoData:
    root: Path
    params: DemoParams
    counts: dict = field(default_factory=dict)  # file (relative) -> rows
    label_counts: dict = field(default_factory=dict)  # file -> {label: rows}


# ---------------------------------------------------------------- names from CLDR


def _babel():
    """The babel package (CLDR data), or a one-line error naming the [demo] extra."""
    from .extras import require

    return require("babel", "the offline demo tasks (xstilts quickstart)")


def _locale(code: str):
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError) as e:
        raise ConfigError(f"unknown CLDR locale {code!r} ({e}); use codes such as de, fr, ru, ja, zh") from None


def _city(loc, zone: str) -> str:
    from babel.core import get_global

    info = loc.time_zones.get(zone, {})
    if "city" in info:
        return info["city"]
    meta = loc.meta_zones.get(get_global("meta_zones").get(zone), {})
    if "city" in meta:
        return meta["city"]
    return zone.split("/", 1)[-1].split("/")[-1].replace("_", " ")


def _unit(loc, unit: str) -> str | None:
    d = loc.unit_display_names.get(unit)
    if not d:
        return None
    return d.get("long") or d.get("short")


def _clean(name) -> str | None:
    if not isinstance(name, str):
        return None
    name = " ".join(name.split())
    return name or None


def collect_names(languages) -> dict[str, dict[str, dict[str, str]]]:
    """category -> item id -> language -> name, for items named in every language given.

    Only items with a name in English and in every language are kept; historical
    currencies ("... (1927–2002)") and regions ("Africa") are left out.
    """
    _babel()
    from babel.core import get_global

    langs = ["en"] + [x for x in languages if x != "en"]
    locs = {x: _locale(x) for x in langs}
    en = locs["en"]
    ids = {
        "country": [k for k in en.territories if re.fullmatch("[A-Z]{2}", k) and k not in _REGION_CODES],
        "language": [k for k in en.languages if re.fullmatch("[a-z]{2,3}", k) and k not in _SPECIAL_LANGUAGES],
        "currency": [k for k in en.currencies if "(" not in en.currencies[k]],
        "city": sorted(z for z in get_global("zone_territories") if not z.startswith("Etc/")),
        "unit": [k for k in en.unit_display_names if not k.startswith(("concentr-", "graphics-"))],
    }
    getters = {
        "country": lambda loc, k: loc.territories.get(k),
        "language": lambda loc, k: loc.languages.get(k),
        "currency": lambda loc, k: loc.currencies.get(k),
        "city": _city,
        "unit": _unit,
    }
    out: dict[str, dict[str, dict[str, str]]] = {}
    for cat in CATEGORIES:
        items = {}
        for k in sorted(set(ids[cat])):
            names = {x: _clean(getters[cat](locs[x], k)) for x in langs}
            if all(names.values()):
                items[k] = names
        out[cat] = items
    # A surface name shared by two items (in any one language) is ambiguous: drop those items everywhere.
    owners: dict[tuple[str, str], set] = {}
    for cat, items in out.items():
        for k, names in items.items():
            for lang, name in names.items():
                owners.setdefault((lang, name.casefold()), set()).add((cat, k))
    ambiguous = {ck for owner in owners.values() if len(owner) > 1 for ck in owner}
    return {cat: {k: v for k, v in items.items() if (cat, k) not in ambiguous} for cat, items in out.items()}


# ---------------------------------------------------------------- splitting and writing


def split_items(names, params: DemoParams) -> dict[str, dict[str, list[str]]]:
    """category -> {"test", "dev", "train", "pool"} -> item ids; test/dev are disjoint from train/pool.

    ``train`` (the few-shot target names) is a subset of ``pool`` (the names
    the intermediate pairs are made of); test and dev items are in neither.
    """
    rng = random.Random(f"xstilts-demo-split-{params.seed}")
    out = {}
    for cat in CATEGORIES:
        ids = sorted(names[cat])
        rng.shuffle(ids)
        # Rank items by how many default languages spell their name differently from English (a proxy for how
        # well known an item is; ties stay in shuffled order). Test, dev and the few-shot training names
        # are spread evenly over the top of that ranking, so the few-shot names are as typical as the
        # test names; every other item feeds the intermediate pairs.
        distinct = lambda k: sum(names[cat][k][x].casefold() != names[cat][k]["en"].casefold()  # noqa: E731
                                 for x in DEFAULT_LANGUAGES)
        ranked = sorted(ids, key=lambda k: -distinct(k))
        n_top = params.test_per_class + params.dev_per_class + params.shots
        if len(ranked) < n_top + 2 * params.shots:
            raise ConfigError(f"demo data: category {cat!r} has only {len(ids)} items named in every language; "
                              "lower test_per_class, dev_per_class or shots")
        top, rest = ranked[:n_top], ranked[n_top:]
        train = [top[int((j + 0.5) * n_top / params.shots)] for j in range(params.shots)]
        left = [k for k in top if k not in set(train)]
        dev = [left[int((j + 0.5) * len(left) / params.dev_per_class)] for j in range(params.dev_per_class)]
        test = [k for k in left if k not in set(dev)]
        pool = train + rest
        out[cat] = {"test": test, "dev": dev, "pool": pool, "train": train}
    return out


def _pairs(names, split, n: int, seed: int) -> list[dict]:
    rng = random.Random(f"xstilts-demo-pairs-{seed}")
    pool = {cat: [names[cat][k]["en"] for k in split[cat]["pool"]] for cat in CATEGORIES}
    seen, out = set(), []
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        if len(out) % 2 == 0:
            c1 = c2 = rng.choice(CATEGORIES)
        else:
            c1, c2 = rng.sample(CATEGORIES, 2)
        a, b = rng.choice(pool[c1]), rng.choice(pool[c2])
        if a == b or (a, b) in seen:
            continue
        seen.add((a, b))
        out.append({"text_a": a, "text_b": b, "label": "same" if c1 == c2 else "different"})
    return out


def _extra_kinds(names) -> dict[str, list[str]]:
    """English names of three non-target kinds (scripts, time zones, world regions) for the is-a task."""
    en = _locale("en")
    # A name that is also a target item's name in any language ("Myanmar": a script, and the German for a
    # country) would be ambiguous, and a training text equal to a test text: left out.
    taken = {n.casefold() for items in names.values() for v in items.values() for n in v.values()}
    zones = sorted({n for mz in en.meta_zones.values() for n in mz.get("long", {}).values() if isinstance(n, str)})
    raw = {
        "script": sorted(v for v in en.scripts.values() if isinstance(v, str)),
        "time_zone": zones,
        "region": sorted(v for k, v in en.territories.items() if re.fullmatch("[0-9]{3}", k)),
    }
    return {kind: [x for x in dict.fromkeys(raw[kind]) if x.casefold() not in taken] for kind in raw}


def _is_a(names, split, n: int, seed: int) -> list[dict]:
    """English "is <name> <kind>?" questions, half yes, over the target kinds' pool items and three other kinds."""
    rng = random.Random(f"xstilts-demo-is-a-{seed}")
    pool = {cat: [names[cat][k]["en"] for k in split[cat]["pool"]] for cat in CATEGORIES}
    pool.update(_extra_kinds(names))
    kinds = sorted(pool)
    seen, out = set(), []
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        kind = rng.choice(kinds)
        name = rng.choice(pool[kind])
        asked = kind if len(out) % 2 == 0 else rng.choice([k for k in kinds if k != kind])
        if (name, asked) in seen:
            continue
        seen.add((name, asked))
        out.append({"text_a": name, "text_b": KIND_PHRASES[asked], "label": "yes" if asked == kind else "no"})
    return out


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def _single(names, split, part: str, lang: str, rng: random.Random | None = None, exclude=frozenset()) -> list[dict]:
    rows = []
    for cat in CATEGORIES:
        for k in split[cat][part]:
            name = names[cat][k][lang]
            if lang != "en" and name.casefold() == names[cat][k]["en"].casefold():
                continue  # spelt as in English: not a cross-lingual test
            if name.casefold() in exclude:
                continue  # the same string is a training text (of another item, in English)
            rows.append({"text_a": name, "text_b": None, "label": cat, "id": f"{cat}:{k}"})
    if rng is not None:
        rng.shuffle(rows)
    return rows


def build(out_dir, params: DemoParams | None = None, *, log=None) -> DemoData:
    """Write the demo task files under ``out_dir``; returns their row and label counts.

    Deterministic: the same parameters and Babel version give byte-identical files.
    An existing folder whose ``manifest.json`` matches is left as it is.
    """
    params = params or DemoParams()
    root = Path(out_dir)
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            manifest = {}
        if manifest.get("digest") == params.digest():
            return DemoData(root, params, manifest["counts"], manifest["label_counts"])
    if log:
        log(f"[data] building the CLDR demo tasks -> {root}")
    # Items are chosen and split on the default languages too, so any subset of them gets the same items.
    names = collect_names(tuple(dict.fromkeys(DEFAULT_LANGUAGES + tuple(params.languages))))
    split = split_items(names, params)
    files = {
        f"{TARGET_TASK}/train-en.jsonl": _single(names, split, "train", "en", random.Random(params.seed)),
        f"{TARGET_TASK}/dev-en.jsonl": _single(names, split, "dev", "en"),
        f"{SAME_CATEGORY_TASK}/train-en.jsonl": _pairs(names, split, params.pairs, params.seed),
        f"{IS_A_TASK}/train-en.jsonl": _is_a(names, split, params.pairs, params.seed),
    }
    seen = {names[cat][k]["en"].casefold() for cat in CATEGORIES for part in ("pool", "dev") for k in split[cat][part]}
    seen |= {x.casefold() for xs in _extra_kinds(names).values() for x in xs}
    for lang in ("en",) + tuple(x for x in params.languages if x != "en"):
        files[f"{TARGET_TASK}/test-{lang}.jsonl"] = _single(names, split, "test", lang, exclude=seen)
    counts, label_counts = {}, {}
    for rel, rows in files.items():
        _write(root / rel, rows)
        counts[rel] = len(rows)
        label_counts[rel] = {}
        for r in rows:
            label_counts[rel][r["label"]] = label_counts[rel].get(r["label"], 0) + 1
    import babel

    manifest = {"digest": params.digest(), "params": asdict(params), "data_version": DATA_VERSION,
                "babel": babel.__version__, "counts": counts, "label_counts": label_counts,
                "items": {cat: {part: len(v) for part, v in parts.items()} for cat, parts in split.items()}}
    _write(manifest_path, [manifest])  # one JSON line
    return DemoData(root, params, counts, label_counts)


def task_defs(languages=DEFAULT_LANGUAGES) -> list[dict]:
    """The two demo tasks as RunConfig ``tasks:`` entries (paths relative to the data folder)."""
    langs = ["en"] + [x for x in languages if x != "en"]
    return [
        {"name": SAME_CATEGORY_TASK, "family": "classification", "languages": ["en"], "labels": list(PAIR_LABELS),
         "files": {"train": f"{SAME_CATEGORY_TASK}/train-{{lang}}.jsonl"}},
        {"name": IS_A_TASK, "family": "classification", "languages": ["en"], "labels": list(YES_NO),
         "files": {"train": f"{IS_A_TASK}/train-{{lang}}.jsonl"}},
        {"name": TARGET_TASK, "family": "classification", "languages": langs, "labels": list(CATEGORIES),
         "files": {"train": f"{TARGET_TASK}/train-{{lang}}.jsonl", "dev": f"{TARGET_TASK}/dev-{{lang}}.jsonl",
                   "test": f"{TARGET_TASK}/test-{{lang}}.jsonl"}},
    ]
