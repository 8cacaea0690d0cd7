"""The ``xstilts`` command line. User mistakes print a one-line reason and exit 2."""

from __future__ import annotations

import argparse
import sys


def _cmd_run(args) -> int:
    from pathlib import Path

    from . import config, pipeline
    from .report import format_rows
    from .store import Store

    cfg = config.load(args.config, args.overrides)
    result = pipeline.run(cfg)
    run_id = pipeline.phase_key("run", cfg.model_dump(), "")
    Path(cfg.workdir).mkdir(parents=True, exist_ok=True)
    pipeline.record(Store(Path(cfg.workdir) / "results.sqlite"), run_id, cfg, result)
    reused = sum(p.status == "reused" for p in result.phases)
    print(f"\n{len(result.phases)} phases ({reused} reused from {cfg.workdir}/phases); run {run_id} recorded in "
          f"{cfg.workdir}/results.sqlite")
    print(format_rows(result.rows))
    return 0


def _cmd_grid(args) -> int:
    from . import grid

    g = grid.load(args.config, args.overrides)
    cells = grid.expand(g)
    if args.dry_run:
        print(grid.format_plan(grid.plan(cells)))
        return 0
    out = grid.run_grid(g, executor=args.executor, address=args.address)
    print(f"{len(out['done'])} cells done, {len(out['failed'])} failed")
    for rid, msg in out["failed"].items():
        print(f"  FAILED {rid}: {msg}")
    return 1 if out["failed"] else 0


def _cmd_results(args) -> int:
    from pathlib import Path

    from .errors import ConfigError
    from .store import Store

    path = Path(args.workdir) / "results.sqlite"
    if not path.exists():
        raise ConfigError(f"no results store at {path} (run `xstilts run` or `xstilts grid` first)")
    store = Store(path)
    frame = store.query(args.sql) if args.sql else getattr(store, f"{args.table}_frame")()
    if args.export:
        if args.sql:
            frame.to_parquet(args.export) if args.export.endswith((".parquet", ".pq")) else frame.to_csv(args.export, index=False)
        else:
            store.export(args.export, table=args.table)
        print(f"wrote {len(frame)} rows to {args.export}")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
            print(frame)
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from .errors import ConfigError
    from .report import build_report
    from .store import Store

    path = Path(args.workdir) / "results.sqlite"
    if not path.exists():
        raise ConfigError(f"no results store at {path} (run `xstilts run` or `xstilts grid` first)")
    out = args.out or str(Path(args.workdir) / "report")
    paths = build_report(Store(path), out, baseline=args.baseline, selection=args.selection)
    for kind, p in paths.items():
        print(f"{kind:<20} {p}")
    return 0


def _cmd_tasks(args) -> int:
    from .tasks import get, mixtures, names

    print(f"{'task':<22} {'family':<16} {'train from':<14} languages")
    for n in names():
        s = get(n)
        langs = ",".join(s.languages)
        print(f"{n:<22} {s.family:<16} {(s.train_task or n):<14} {len(s.languages):>3}: {langs}")
    for m in mixtures():
        print(f"{m.name:<22} {'mixture':<16} {m.rule:<14} {', '.join(m.tasks)}")
    return 0


def _cmd_show(args) -> int:
    from . import config
    from .data import featurized, load_examples
    from .model import load_tokenizer
    from .pipeline import register_config_tasks
    from .tasks import get

    cfg = config.load(args.config, args.overrides)
    register_config_tasks(cfg)
    spec = get(args.task)
    split = args.split or (spec.eval_split if args.lang != spec.train_lang else "train")
    tokenizer = load_tokenizer(cfg.model)
    examples = load_examples(spec, split, args.lang, cfg.data_dir, limit=args.n)
    rows = featurized(spec, examples, tokenizer, max_length=cfg.target.train.max_length,
                      cache_dir=f"{cfg.workdir}/cache", source_key=f"show:{split}:{args.lang}:{args.n}",
                      stride=cfg.target.train.doc_stride)
    for i, row in enumerate(rows):
        print(f"--- {spec.name} [{args.lang}/{split}] row {i} (example {row['example_idx']}, {row['length']} tokens)")
        print(tokenizer.decode(row["input_ids"]))
        label = {k: v for k, v in row.items() if k in ("label", "start", "end")}
        if "labels" in row:
            label["tags"] = [spec.labels[t] for t in row["labels"] if t >= 0]
        print(f"    {label}")
    return 0


def _cmd_data_check(args) -> int:
    from collections import defaultdict

    from .data import check

    rows = check(args.data_dir, args.tasks or None, count=not args.no_count, skip_invalid=args.skip_invalid)
    groups = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["split"])].append(r)
    print(f"{'task':<14} {'split':<11} {'present':>8} {'examples':>9}  missing")
    for (task, split), rs in groups.items():
        have = [r for r in rs if r["present"]]
        n = sum(r["examples"] or 0 for r in have)
        missing = [r["lang"] for r in rs if not r["present"]]
        miss = "-" if not missing else ("all" if not have else ",".join(missing))
        counts = f"{n:>9}" if not args.no_count else f"{'':>9}"
        print(f"{task:<14} {split:<11} {len(have):>3}/{len(rs):<4} {counts}  {miss}")
        if args.verbose:
            for r in have:
                print(f"{'':<26} {r['lang']:<6} {r['examples'] if r['examples'] is not None else '':>9}  {r['path']}")
    return 0


def _cmd_quickstart(args) -> int:
    from dataclasses import replace

    from .errors import ConfigError
    from .quickstart import Settings, quickstart

    s = Settings()
    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError("--seeds: at least 1")
        s = replace(s, seeds=tuple(range(args.seeds)))
    if args.languages:
        s = replace(s, languages=tuple(x.strip() for x in args.languages.split(",") if x.strip()))
    quickstart(args.out, s)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xstilts", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the pipeline of a config: [mlm] -> [intermediate] -> target -> zero-shot eval")
    r.add_argument("config", help="YAML config file")
    r.add_argument("overrides", nargs="*", help="key=value overrides, e.g. target.seeds=[0,1,2]")
    r.set_defaults(fn=_cmd_run)

    g = sub.add_parser("grid", help="run a grid of models x intermediate settings x targets x seeds")
    g.add_argument("config", help="grid YAML")
    g.add_argument("overrides", nargs="*", help="key=value overrides of the grid config")
    g.add_argument("--dry-run", action="store_true", help="print the plan: phases to train, done, estimated compute")
    g.add_argument("--executor", choices=["local", "ray"], default="local")
    g.add_argument("--address", default=None, help="Ray cluster to join (default: start a local one)")
    g.set_defaults(fn=_cmd_grid)

    q = sub.add_parser("results", help="query the results store; export CSV or Parquet")
    q.add_argument("--workdir", default="runs")
    q.add_argument("--table", default="metrics", choices=["metrics", "records", "timings", "runs", "environment"])
    q.add_argument("--sql", default=None, help="an SQL query over the store's tables")
    q.add_argument("--export", default=None, help="write to this .csv or .parquet file")
    q.add_argument("--max-rows", type=int, default=60)
    q.set_defaults(fn=_cmd_results)

    rp = sub.add_parser("report", help="HTML + Markdown report (tables, plots, significance) from the store")
    rp.add_argument("--workdir", default="runs")
    rp.add_argument("--out", default=None, help="default: <workdir>/report")
    rp.add_argument("--baseline", default="none", help="the setting deltas are computed against")
    rp.add_argument("--selection", default="en-dev", choices=["en-dev", "target-dev"])
    rp.set_defaults(fn=_cmd_report)

    t = sub.add_parser("tasks", help="list tasks, families and languages")
    t.set_defaults(fn=_cmd_tasks)

    s = sub.add_parser("show-examples", help="print featurized examples decoded back to text")
    s.add_argument("task")
    s.add_argument("--lang", default="en")
    s.add_argument("-n", type=int, default=3)
    s.add_argument("--split", default=None)
    s.add_argument("--config", default=None, help="config giving model, data_dir and extra tasks")
    s.add_argument("overrides", nargs="*")
    s.set_defaults(fn=_cmd_show)

    q = sub.add_parser("quickstart", help="offline demo: direct vs intermediate -> target, zero-shot in 8 languages "
                                          "(me5-small, CPU, a few minutes)")
    q.add_argument("--out", default="xstilts_out/quickstart", help="output folder (results, plot, reusable runs)")
    q.add_argument("--seeds", type=int, default=None, help="target seeds per arm (default 3)")
    q.add_argument("--languages", default=None, help="zero-shot languages, comma-separated CLDR codes "
                                                      "(default de,fr,es,ru,ja,ar,hi,zh)")
    q.set_defaults(fn=_cmd_quickstart)

    d = sub.add_parser("data", help="inspect a data folder")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dc = dsub.add_parser("check", help="per task and language: which files are present, how many examples, what is missing")
    dc.add_argument("data_dir")
    dc.add_argument("--tasks", nargs="*", help="only these tasks")
    dc.add_argument("--no-count", action="store_true", help="only look for files, do not read them")
    dc.add_argument("--skip-invalid", action="store_true", help="count malformed records instead of stopping at the first")
    dc.add_argument("-v", "--verbose", action="store_true", help="one line per language")
    dc.set_defaults(fn=_cmd_data_check)
    return p


def main(argv: list[str] | None = None) -> int:
    from .errors import XstiltsError

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except XstiltsError as e:
        print(f"xstilts: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xstilts: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
