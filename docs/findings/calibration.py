"""Tables for docs/findings/calibration.md from the store a calibration run wrote.

    xstilts run configs/findings/calibration-tydiqa.yaml
    python docs/findings/calibration.py runs/findings/calibration      # writes docs/findings/calibration.json

Per language: SQuAD v1.1 F1 / EM exactly as stored by the eval phase, re-derived question by question
(``xstilts.metrics.squad_v1`` on each question alone; the means must equal the stored values), with a 95 %
percentile bootstrap interval over questions (``scipy.stats.bootstrap``, 2,000 resamples, seed 0). The
averages over languages resample each language's questions separately (stratified), as the languages are
separate test sets. One training seed: the intervals are over evaluation questions, not over seeds.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from xstilts.data import load_examples
from xstilts.metrics import squad_v1
from xstilts.tasks import get

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def per_question(preds: dict, examples: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    f1, em = [], []
    for e in examples:
        s = squad_v1({e["id"]: preds.get(e["id"], "")}, {e["id"]: list(e["answers"]["text"])})
        f1.append(s["f1"])
        em.append(s["exact_match"])
    return np.asarray(f1), np.asarray(em)


def interval(samples: list[np.ndarray]) -> tuple[float, float]:
    """95 % percentile bootstrap of the mean of per-sample means (each sample resampled on its own)."""
    res = stats.bootstrap(tuple(samples), lambda *xs, axis=-1: np.mean([x.mean(axis=axis) for x in xs], axis=0),
                          n_resamples=2000, confidence_level=0.95, method="percentile", paired=False,
                          random_state=np.random.default_rng(0), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def main(workdir: str) -> dict:
    work = Path(workdir)
    db = sqlite3.connect(work / "results.sqlite")
    rows = db.execute("select lang, metric, value, n, phase_key from metrics where task = 'tydiqa' "
                      "and split = 'dev' order by lang, metric").fetchall()
    stored = {(lang, metric): (value, n, key) for lang, metric, value, n, key in rows}
    spec = get("tydiqa")
    out = {"languages": {}, "averages": {}}
    f1s, ems = {}, {}
    for lang in sorted({lang for lang, _ in stored}):
        value, n, key = stored[(lang, "f1")]
        preds = json.loads((work / "phases" / f"eval-{key}" / "predictions" / f"{lang}.json").read_text("utf-8"))
        examples = load_examples(spec, "dev", lang, DATA)
        f1, em = per_question(preds, examples)
        assert len(f1) == n and abs(f1.mean() - value) < 1e-12, (lang, f1.mean(), value)
        assert abs(em.mean() - stored[(lang, "exact_match")][0]) < 1e-12, lang
        f1s[lang], ems[lang] = f1, em
        out["languages"][lang] = {"n": n, "f1": 100 * value, "f1_ci": [100 * x for x in interval([f1])],
                                  "em": 100 * em.mean(), "em_ci": [100 * x for x in interval([em])]}
    for name, langs in (("all 9 languages", sorted(f1s)), ("8 zero-shot languages", sorted(set(f1s) - {"en"}))):
        out["averages"][name] = {
            "languages": langs,
            "f1": 100 * float(np.mean([f1s[la].mean() for la in langs])),
            "f1_ci": [100 * x for x in interval([f1s[la] for la in langs])],
            "em": 100 * float(np.mean([ems[la].mean() for la in langs])),
            "em_ci": [100 * x for x in interval([ems[la] for la in langs])],
        }
    done = json.loads(next((work / "phases").glob("target-*/done.json")).read_text("utf-8"))
    out["training"] = {k: done.get(k) for k in ("steps", "best_dev", "train_examples", "timings", "embedding") if k in done}
    return out


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else "runs/findings/calibration")
    dest = Path(__file__).with_suffix(".json")
    dest.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for lang, r in result["languages"].items():
        print(f"| {lang} | {r['n']} | {r['f1']:.1f} [{r['f1_ci'][0]:.1f}, {r['f1_ci'][1]:.1f}] "
              f"| {r['em']:.1f} [{r['em_ci'][0]:.1f}, {r['em_ci'][1]:.1f}] |")
    for name, r in result["averages"].items():
        print(f"| {name} | | {r['f1']:.1f} [{r['f1_ci'][0]:.1f}, {r['f1_ci'][1]:.1f}] "
              f"| {r['em']:.1f} [{r['em_ci'][0]:.1f}, {r['em_ci'][1]:.1f}] |")
    print(f"wrote {dest}")
