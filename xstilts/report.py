"""Tables from result rows (a pure function of the rows)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def format_rows(rows: list[dict]) -> str:
    """task/metric x language table; mean ± std over seeds when there are several."""
    if not rows:
        return "(no results)"
    cells = defaultdict(list)
    langs: dict[str, None] = {}
    for r in rows:
        cells[(r["task"], r["metric"], r["lang"])].append(r["value"])
        langs.setdefault(r["lang"])
    keys = sorted({(t, m) for t, m, _ in cells})
    header = f"{'task':<14} {'metric':<12} " + " ".join(f"{x:>13}" for x in langs) + f" {'avg':>13}"
    out = [header]
    for t, m in keys:
        vals = []
        line = f"{t:<14} {m:<12} "
        for lang in langs:
            v = cells.get((t, m, lang))
            if v:
                vals.append(np.mean(v))
                line += f" {100 * np.mean(v):6.2f}±{100 * np.std(v):5.2f}" if len(v) > 1 else f" {100 * v[0]:13.2f}"
            else:
                line += f" {'-':>13}"
        out.append(line + f" {100 * np.mean(vals):13.2f}")
    return "\n".join(out)
