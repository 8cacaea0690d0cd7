"""Shared fixtures: a tiny random model and a tiny multilingual task folder, built in-process."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)  # tests/test_ci.py runs pytest on a copy of this file

# Tiny models gain nothing from several threads, and on a loaded 2-core machine OpenMP threads contend badly.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)

SHARED_DATA = Path(os.environ.get("XSTILTS_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

# ---------------------------------------------------------------- skips for a missing requirement, and CI
# A test that needs something the checkout may lack (the benchmark data, a system program) skips with a reason
# starting with MISSING. Locally that is a skip; with CI=true it fails the run, so a broken CI environment
# cannot turn tests into skips while staying green. Python packages the project depends on are imported
# plainly (no importorskip); should one appear anyway, its "could not import" skip fails under CI too.
MISSING = "missing requirement: "
CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
HAS_SHARED_DATA = (SHARED_DATA / "README.md").is_file()
NO_SHARED_DATA = (f"{MISSING}benchmark data folder {SHARED_DATA} (../shared/data, or set XSTILTS_SHARED_DATA "
                  "to the offline benchmark data)")
needs_data = pytest.mark.skipif(not HAS_SHARED_DATA, reason=NO_SHARED_DATA)


def require_shared_data() -> Path:
    """The benchmark data folder; skips the test (fails it under CI=true) when it is absent."""
    if not HAS_SHARED_DATA:
        pytest.skip(NO_SHARED_DATA)
    return SHARED_DATA


def skip_missing(what: str):
    """Skip for a missing requirement (a program, a folder): a failure under CI=true."""
    pytest.skip(MISSING + what)


def _fail_if_missing(rep, what: str) -> None:
    reason = rep.longrepr[2].removeprefix("Skipped: ") if rep.skipped and isinstance(rep.longrepr, tuple) else ""
    if CI and (reason.startswith(MISSING) or reason.startswith("could not import")):
        rep.outcome = "failed"
        rep.longrepr = f"CI=true: {what} may not skip for a missing requirement: {reason.removeprefix(MISSING)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _fail_if_missing((yield).get_result(), "a test")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    _fail_if_missing((yield).get_result(), "a test module")


# ---------------------------------------------------------------- test tiers
# Every test gets exactly one tier marker, from its module's entry here (the one place tiers are decided):
#   unit          pure functions and small fixtures, no model;
#   integration   tiny models built in-process, whole pipelines, CLI and subprocess runs;
#   real_data     reads the benchmark data in ../shared/data;
#   multiprocess  several processes under accelerate launch.
# A test marked ``needs_data`` or using the ``shared_data`` fixture is real_data whatever its module; a test that
# carries a tier marker itself keeps it. Select with ``pytest -m unit`` (or ``-m "not multiprocess"``, ...);
# CI runs every tier. tests/test_layout.py checks that every test module is listed exactly once.
TIERS = {
    "unit": ["test_metrics", "test_store", "test_extras", "test_readers", "test_official", "test_families",
             "test_benchmarks", "test_metric_registry"],
    "integration": ["test_active_rows", "test_ci", "test_dropout", "test_export", "test_grid", "test_hub",
                    "test_forecast", "test_layout", "test_me5", "test_pipeline", "test_progress", "test_quickstart", "test_report",
                    "test_resume_and_errors", "test_selection", "test_studies", "test_tracking", "test_translate"],
    "real_data": ["test_real_data"],
    "multiprocess": ["test_multiprocess"],
}
TIER_OF_MODULE = {module: tier for tier, modules in TIERS.items() for module in modules}


def _reads_shared_data(item) -> bool:
    if "shared_data" in getattr(item, "fixturenames", ()):
        return True
    return any(m.name == "skipif" and m.kwargs.get("reason") == NO_SHARED_DATA for m in item.iter_markers())


def pytest_collection_modifyitems(config, items):
    for item in items:
        own = [m.name for m in item.iter_markers() if m.name in TIERS]
        if len(own) > 1:
            raise pytest.UsageError(f"{item.nodeid}: several tier markers {own}; a test has exactly one")
        if own:
            continue
        tier = TIER_OF_MODULE.get(item.path.stem)
        if tier is None:
            continue  # not one of this suite's modules (tests/test_ci.py's inner run); test_layout guards ours
        if tier != "multiprocess" and _reads_shared_data(item):
            tier = "real_data"
        item.add_marker(tier)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder (a test using it is tiered real_data); skips as :func:`require_shared_data`."""
    return require_shared_data()


# A toy topic task: is the sentence about animals or about food? Same words in three languages.
WORDS = {
    "en": {"animal": ["cat", "dog", "horse", "bird", "fish", "cow"], "food": ["bread", "cheese", "apple", "soup", "rice", "cake"],
           "frame": ["I see a {}", "this is the {}", "we like the {}", "where is my {}"]},
    "de": {"animal": ["Katze", "Hund", "Pferd", "Vogel", "Fisch", "Kuh"], "food": ["Brot", "Käse", "Apfel", "Suppe", "Reis", "Kuchen"],
           "frame": ["ich sehe eine {}", "das ist der {}", "wir mögen den {}", "wo ist mein {}"]},
    "fr": {"animal": ["chat", "chien", "cheval", "oiseau", "poisson", "vache"], "food": ["pain", "fromage", "pomme", "soupe", "riz", "gâteau"],
           "frame": ["je vois un {}", "c'est le {}", "nous aimons le {}", "où est mon {}"]},
    "ru": {"animal": ["кошка", "собака", "лошадь", "птица", "рыба", "корова"], "food": ["хлеб", "сыр", "яблоко", "суп", "рис", "торт"],
           "frame": ["я вижу {}", "это {}", "мы любим {}", "где мой {}"]},
}


def topic_examples(lang: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    w = WORDS[lang]
    out = []
    for _ in range(n):
        label = rng.choice(["animal", "food"])
        out.append({"text_a": rng.choice(w["frame"]).format(rng.choice(w[label])), "text_b": None, "label": label})
    return out


def pair_examples(n: int, seed: int) -> list[dict]:
    """Intermediate toy task: are two English sentences about the same topic?"""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = topic_examples("en", 2, rng.randrange(10**9))
        out.append({"text_a": a["text_a"], "text_b": b["text_a"], "label": "same" if a["label"] == b["label"] else "different"})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy_data")
    write_jsonl(root / "pair" / "train-en.jsonl", pair_examples(96, 1))
    write_jsonl(root / "pair" / "dev-en.jsonl", pair_examples(32, 2))
    write_jsonl(root / "topic" / "train-en.jsonl", topic_examples("en", 64, 3))
    for i, lang in enumerate(WORDS):
        write_jsonl(root / "topic" / f"dev-{lang}.jsonl", topic_examples(lang, 32, 10 + i))
        write_jsonl(root / "topic" / f"test-{lang}.jsonl", topic_examples(lang, 40, 20 + i))
    return root


TOY_TASKS = [
    {"name": "toy_pair", "family": "classification", "languages": ["en"], "labels": ["same", "different"],
     "files": {"train": "pair/train-{lang}.jsonl", "dev": "pair/dev-{lang}.jsonl"}},
    {"name": "toy_topic", "family": "classification", "languages": list(WORDS), "labels": ["animal", "food"],
     "files": {"train": "topic/train-{lang}.jsonl", "dev": "topic/dev-{lang}.jsonl", "test": "topic/test-{lang}.jsonl"}},
]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from xstilts.tiny import build_tiny_model

    corpus = [f.format(x) for lang in WORDS.values() for key in ("animal", "food") for x in lang[key] for f in lang["frame"]]
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", corpus, vocab_size=300)
