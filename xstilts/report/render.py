"""The one renderer: tables and figures as Markdown, HTML, CSV and plain text, for the report,
the studies and the quickstart.

Generic pieces: :func:`md_table`, :func:`html_table`, :func:`text_table`, :func:`write_csv`,
:func:`pyplot` (matplotlib, headless), :func:`b64` (embedded images), :func:`json_default`. On top of
them: the report's page (:func:`render_markdown`, :func:`render_html`: main table, secondary tables,
figures, study sections) and a study's section (:func:`section_markdown`, :func:`section_html`,
:func:`format_section`). Nothing here reads the store: every function takes numbers already computed
(:mod:`xstilts.report.summary`, a study's analysis, the quickstart's table).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..config import NOT_ZERO_SHOT

# =========================================================================== generic tables and figures

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;
vertical-align:top}th{background:#f2f2f2}td:first-child,th:first-child,td.text{text-align:left}
.delta{color:#555;font-size:.88em}.sig{color:#0a5;font-weight:600}.neg.sig{color:#c22}
.note{color:#555;font-size:.9em}img{max-width:100%;border:1px solid #eee}
.warn{color:#a40;border-left:4px solid #a40;padding:4px 10px;background:#fff6ee}
"""


def _numeric(x) -> bool:
    return str(x)[:1] in set("0123456789+-–[<") or str(x) == "n/a"


def md_table(header, rows, align: str | None = None) -> str:
    """A Markdown table; ``align`` (one ``l``/``r`` per column) right-aligns the ``r`` columns."""
    def esc(x):
        return str(x).replace("|", "\\|")

    rule = "|" + "---|" * len(header) if align is None else "|" + "".join(
        ("---:" if a == "r" else "---") + "|" for a in align)
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", rule]
    lines += ["| " + " | ".join(esc(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header, rows, table_id=None, *, cell_classes: bool = True, sep: str = "") -> str:
    """An HTML table; ``cell_classes`` marks text cells ``class="text"`` (left-aligned by the CSS)."""
    attr = f' id="{html.escape(table_id)}"' if table_id else ""
    out = [f"<table{attr}><thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
           + "</tr></thead><tbody>"]
    for row in rows:
        tds = [f'<td class="text">{html.escape(str(x))}</td>' if cell_classes and not _numeric(x)
               else f"<td>{html.escape(str(x))}</td>" for x in row]
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return sep.join(out)


def text_table(header, rows, align: str | None = None, rule: bool = False) -> str:
    """A plain-text table padded to column width (``l``/``r`` per column; default left), for terminals."""
    table = [[str(x) for x in header]] + [[str(x) for x in row] for row in rows]
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    align = align or "l" * len(header)

    def fmt(r):
        return "  ".join(x.rjust(w) if a == "r" else x.ljust(w) for x, w, a in zip(r, widths, align))

    lines = [fmt(table[0])] + ([fmt(["-" * w for w in widths])] if rule else []) + [fmt(r) for r in table[1:]]
    return "\n".join(lines)


def write_csv(path, header, rows) -> Path:
    """``header`` then ``rows`` as CSV (UTF-8)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return Path(path)


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lay out, write (PNG, 110 dpi) and close ``fig``: every report, study and quickstart figure ends here."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


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


# =========================================================================== the report's page

def _pct(x, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:+.{digits}f}" if sign else f"{100 * x:.{digits}f}"


def _p(p) -> str:
    if p is None:
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def format_score(cell: dict) -> str:
    """``"71.23 ± 0.45"`` (x100), or ``"71.23 (1 seed)"``."""
    if cell["std"] is None:
        return f"{_pct(cell['mean'])} ({cell['n_seeds']} seed{'s' if cell['n_seeds'] != 1 else ''})"
    return f"{_pct(cell['mean'])} ± {_pct(cell['std'])}"


def format_delta(cell: dict) -> str:
    """``"Δ +1.20 ± 0.30 †"`` (x100; † when significant)."""
    if cell["delta_mean"] is None:
        return ""
    std = f" ± {_pct(cell['delta_std'])}" if cell["delta_std"] is not None else ""
    return f"Δ {_pct(cell['delta_mean'], sign=True)}{std}{' †' if cell['significant'] else ''}"


def _main_table_rows(summary) -> tuple[list[str], list[list[tuple[str, str, dict | None]]]]:
    cells = {(c["setting"], c["target"]): c for c in summary["table"]}
    header = ["setting"] + [f"{t} ({summary['target_info'][t]['metric']}, {len(summary['target_info'][t]['languages'])} "
                            f"langs)" for t in summary["targets"]]
    rows = []
    for s in summary["settings"]:
        row = []
        for t in summary["targets"]:
            c = cells.get((s, t))
            row.append((format_score(c), format_delta(c), c) if c else ("–", "", None))
        rows.append((s, row))
    return header, rows


def _significance_rows(summary) -> list[list[str]]:
    out = []
    for c in summary["table"]:
        if c["delta_mean"] is None:
            continue
        ci = "–" if c["ci_low"] is None else f"[{_pct(c['ci_low'], sign=True)}, {_pct(c['ci_high'], sign=True)}]"
        out.append([c["setting"], c["target"], f"{_pct(c['delta_mean'], sign=True)}", ci, _p(c["p_value"]),
                    c["bootstrap_unit"] or "–", str(len(c["paired_seeds"])), str(len(c["paired_languages"]))])
    return out


SIG_HEADER = ["setting", "target", "Δ", "95% CI", "p", "resampled", "seeds", "langs"]


def _benchmark_rows(summary) -> list[list[str]]:
    out = []
    for bench, by_setting in summary["benchmarks"].items():
        for setting, v in by_setting.items():
            label = "complete" if not v["partial"] else f"PARTIAL ({len(v['tasks'])} tasks: {', '.join(v['tasks'])})"
            out.append([bench.upper(), setting, _pct(v["score"]), _pct(v["delta"], sign=True), label])
    return out


BENCH_HEADER = ["benchmark", "setting", "score", "Δ vs baseline", "coverage"]


def _selection_rows(summary) -> list[list[str]]:
    out = []
    for t, e in summary["selection"]["targets"].items():
        out.append([t, e["setting"] or "n/a (no dev scores)", _pct(e["dev_score"]), _pct(e["test"]),
                    _pct(e["baseline_test"]), _pct(e["delta"], sign=True), _p(e["p_value"])])
    return out


SEL_HEADER = ["target", "selected setting", "selection dev", "test", "baseline test", "Δ", "p"]


def _selection_bench_rows(summary) -> list[list[str]]:
    return [[b.upper(), _pct(v["selected"]), _pct(v["baseline"]), _pct(v["delta"], sign=True),
             "complete" if not v["partial"] else f"PARTIAL ({', '.join(v['tasks'])})"]
            for b, v in summary["selection"]["benchmarks"].items()]


SEL_BENCH_HEADER = ["benchmark", "selection", "baseline", "Δ", "coverage"]


def _per_language_rows(summary, target) -> tuple[list[str], list[list[str]]]:
    langs = summary["target_info"][target]["languages"]
    rows = []
    for s, by_lang in summary["per_language"][target].items():
        if s == summary["baseline"]:
            rows.append([f"{s} (score)"] + [_pct(by_lang[lang]["mean"]) for lang in langs])
        else:
            rows.append([f"{s} (Δ)"] + [_pct(by_lang[lang]["delta"], sign=True) for lang in langs])
    return ["setting"] + langs, rows


def heatmap(summary, target, path: Path) -> Path | None:
    langs = summary["target_info"][target]["languages"]
    settings = [s for s in summary["per_language"][target] if s != summary["baseline"]]
    if not settings or not langs:
        return None
    data = np.array([[summary["per_language"][target][s][lang]["delta"] for lang in langs] for s in settings],
                    dtype=float) * 100
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(langs) + 2.5), max(2.4, 0.45 * len(settings) + 1.6)))
    finite = data[np.isfinite(data)]
    lim = float(np.abs(finite).max()) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    im = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(langs)), langs, rotation=90 if len(langs) > 12 else 0)
    ax.set_yticks(range(len(settings)), settings)
    if data.size <= 400:
        for i in range(len(settings)):
            for j in range(len(langs)):
                if np.isfinite(data[i, j]):
                    dark = abs(data[i, j]) > 0.6 * lim
                    ax.text(j, i, f"{data[i, j]:+.1f}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
    fig.colorbar(im, ax=ax, label=f"Δ {summary['target_info'][target]['metric']} x100")
    ax.set_title(f"{target}: Δ vs '{summary['baseline']}' per language\n(mean over paired seeds)", fontsize=9)
    return save_figure(fig, path)


def delta_plot(summary, path: Path) -> Path | None:
    cells = [c for c in summary["table"] if c["delta_mean"] is not None]
    if not cells:
        return None
    plt = pyplot()
    targets = [t for t in summary["targets"] if any(c["target"] == t for c in cells)]
    settings = [s for s in summary["settings"] if any(c["setting"] == s for c in cells)]
    width = 0.8 / max(1, len(settings))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(targets) + 2), 3.4))
    for i, s in enumerate(settings):
        xs, ys, lo, hi = [], [], [], []
        for j, t in enumerate(targets):
            c = next((c for c in cells if c["setting"] == s and c["target"] == t), None)
            if c is None:
                continue
            xs.append(j + (i - (len(settings) - 1) / 2) * width)
            ys.append(100 * c["delta_mean"])
            lo.append(100 * (c["delta_mean"] - c["ci_low"]) if c["ci_low"] is not None else 0)
            hi.append(100 * (c["ci_high"] - c["delta_mean"]) if c["ci_high"] is not None else 0)
        ax.bar(xs, ys, width, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], capsize=3, label=s)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(targets)), targets)
    ax.set_ylabel(f"Δ vs '{summary['baseline']}' (x100)")
    ax.set_title("Δ over the baseline, 95% paired-bootstrap CI", fontsize=9)
    ax.legend(fontsize=7, ncols=min(4, len(settings)))
    return save_figure(fig, path)


def _html_main_table(summary) -> str:
    header, rows = _main_table_rows(summary)
    out = ['<table id="main-table"><thead><tr>'] + [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for setting, cells in rows:
        out.append(f"<tr><td>{html.escape(setting)}</td>")
        for score, delta, c in cells:
            cls = "delta"
            if c and c["significant"]:
                cls += " sig" + (" neg" if c["delta_mean"] < 0 else "")
            extra = ""
            if c and c["delta_mean"] is not None:
                extra = f"<br><small>p={_p(c['p_value'])}</small>"
            out.append(f'<td><div class="score">{html.escape(score)}</div>'
                       f'<div class="{cls}">{html.escape(delta)}{extra}</div></td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _md_main_table(summary) -> str:
    header, rows = _main_table_rows(summary)
    body = []
    for setting, cells in rows:
        body.append([setting] + [score + (f"<br>{delta} (p={_p(c['p_value'])})" if delta else "")
                                 for score, delta, c in cells])
    return md_table(header, body)


def report_tables(summary) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, header, rows) of every secondary table."""
    out = [("Significance (paired bootstrap)", SIG_HEADER, _significance_rows(summary))]
    out.append(("XTREME / XTREME-R scores", BENCH_HEADER, _benchmark_rows(summary)))
    rule = summary["selection"]["rule"] + ("" if summary["selection"]["rule"] == "en-dev" else f", {NOT_ZERO_SHOT}")
    out.append((f"Selection ({rule}) per target", SEL_HEADER, _selection_rows(summary)))
    out.append((f"Selection ({rule}): benchmark score vs baseline", SEL_BENCH_HEADER,
                _selection_bench_rows(summary)))
    for t in summary["targets"]:
        header, rows = _per_language_rows(summary, t)
        info = summary["target_info"][t]
        out.append((f"{t}: per language ({info['metric']}, split {info['split']})", header, rows))
    return out


def render_markdown(title, summary, sections, plots, out_dir, studies=()) -> str:
    lines = [f"# {title}", ""] + [f"> **{w}**\n" for w in summary["not_zero_shot"]]
    lines += [f"Baseline: `{summary['baseline']}`. Scores x100.", "", "## Main table", "",
             _md_main_table(summary) if summary["table"] else "(no results)", ""]
    for heading, header, rows in sections:
        lines += [f"## {heading}", "", md_table(header, rows) if rows else "(none)", ""]
    if plots:
        lines += ["## Figures", ""]
        lines += [f"![{cap}]({os.path.relpath(p, out_dir)})" for cap, p in plots]
        lines.append("")
    if studies:
        lines += [section_markdown(sec, folder, out_dir) for sec, folder in studies]
    lines += ["## How this report aggregates", ""] + [f"- {m}" for m in summary["method"]] + [""]
    if summary["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    lines += ["## Provenance", "", "```", json.dumps(summary["provenance"], indent=1, default=str), "```", ""]
    return "\n".join(lines)


def render_html(title, summary, sections, plots, studies=()) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
             f"</head><body><h1>{e(title)}</h1>",
             *[f"<p class='warn'><strong>{e(w)}</strong></p>" for w in summary["not_zero_shot"]],
             f"<p>Baseline: <code>{e(summary['baseline'])}</code>. Scores x100; † = significant.</p>",
             "<h2>Main table</h2>", _html_main_table(summary) if summary["table"] else "<p>(no results)</p>"]
    for heading, header, rows in sections:
        parts += [f"<h2>{e(heading)}</h2>", html_table(header, rows) if rows else "<p>(none)</p>"]
    if plots:
        parts.append("<h2>Figures</h2>")
        parts += [f"<figure><img alt='{e(cap)}' src='data:image/png;base64,{b64(p)}'><figcaption>{e(cap)}"
                  "</figcaption></figure>" for cap, p in plots]
    if studies:
        parts += [section_html(sec, folder) for sec, folder in studies]
    parts += ["<h2>How this report aggregates</h2><ul>"] + [f"<li>{e(m)}</li>" for m in summary["method"]]
    parts.append("</ul>")
    if summary["notes"]:
        parts += ["<h2>Notes</h2><ul class='note'>"] + [f"<li>{e(n)}</li>" for n in summary["notes"]] + ["</ul>"]
    parts += ["<h2>Provenance</h2><pre>", e(json.dumps(summary["provenance"], indent=1, default=str)), "</pre>",
              "</body></html>"]
    return "\n".join(parts)


# =========================================================================== a study's section

def section_markdown(section: dict, section_dir, out_dir, level: int = 2) -> str:
    """Markdown of a section; plot links relative to ``out_dir``."""
    h = "#" * level
    lines = [f"{h} {section['title']}", "", f"*Question:* {section['question']}", "", f"{h}# Conclusion", ""]
    lines += [f"- {c}" for c in section["conclusion"]] + ["", f"*Test:* {section['test']}", ""]
    for t in section["tables"]:
        lines += [f"{h}# {t['caption']}", "", md_table(t["header"], t["rows"]) if t["rows"] else "(none)", ""]
    for p in section["plots"]:
        rel = os.path.relpath(Path(section_dir) / p["file"], out_dir)
        lines += [f"![{p['caption']}]({rel})", ""]
    if section.get("notes"):
        lines += [f"{h}# Notes", ""] + [f"- {n}" for n in section["notes"]] + [""]
    return "\n".join(lines)


def section_html(section: dict, section_dir) -> str:
    """HTML of a section with its plots embedded (base64)."""
    e = html.escape
    parts = [f"<h2>{e(section['title'])}</h2>", f"<p><em>Question:</em> {e(section['question'])}</p>",
             "<h3>Conclusion</h3><ul>"] + [f"<li>{e(c)}</li>" for c in section["conclusion"]]
    parts.append(f"</ul><p class='note'><em>Test:</em> {e(section['test'])}</p>")
    for t in section["tables"]:
        parts.append(f"<h3>{e(t['caption'])}</h3>")
        parts.append(html_table(t["header"], t["rows"], cell_classes=False, sep="\n") if t["rows"] else "<p>(none)</p>")
    for p in section["plots"]:
        f = Path(section_dir) / p["file"]
        if f.exists():
            parts.append(f"<figure><img alt='{e(p['caption'])}' src='data:image/png;base64,{b64(f)}'>"
                         f"<figcaption>{e(p['caption'])}</figcaption></figure>")
    if section.get("notes"):
        parts += ["<ul class='note'>"] + [f"<li>{e(n)}</li>" for n in section["notes"]] + ["</ul>"]
    return "\n".join(parts)


def format_section(section: dict) -> str:
    """Plain text for the terminal: conclusion, test, first table."""
    lines = [section["title"], "", "Conclusion:"] + [f"  - {c}" for c in section["conclusion"]]
    lines += ["", f"Test: {section['test']}", ""]
    if section["tables"]:
        t = section["tables"][0]
        lines.append(t["caption"])
        if t["rows"]:
            lines.append(text_table(t["header"], t["rows"]))
    return "\n".join(lines)
