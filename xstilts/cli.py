"""The ``xstilts`` command line. User mistakes print a one-line reason and exit 2."""

from __future__ import annotations

import argparse
import os
import sys


def _cmd_run(args) -> int:
    from pathlib import Path

    from . import config, pipeline
    from .report import format_rows
    from .store import Store

    from .distributed import is_main

    cfg = config.load(args.config, args.overrides)
    result = pipeline.run(cfg, log=_quiet(args))
    if not is_main():  # under `accelerate launch`: rank 0 records and prints
        return 0
    run_id = pipeline.run_id_for(cfg)
    Path(cfg.workdir).mkdir(parents=True, exist_ok=True)
    pipeline.record(Store(Path(cfg.workdir) / "results.sqlite"), run_id, cfg, result)
    reused = sum(p.status == "reused" for p in result.phases)
    print(f"\n{len(result.phases)} phases ({reused} reused from {cfg.workdir}/phases); run {run_id} recorded in "
          f"{cfg.workdir}/results.sqlite")
    if cfg.selection != "en-dev":
        print(f"NOT zero-shot: target checkpoints picked on target-language dev sets (selection: {cfg.selection}); "
              f"recorded as setting {pipeline.setting_label(cfg) + config.selection_mark(cfg.selection)!r}")
    print(format_rows(result.rows))
    return 0


def _quiet(args):
    """``--quiet``: no progress bars or progress lines; returns the log function for a pipeline."""
    from . import progress

    progress.set_quiet(args.quiet)
    return (lambda message: None) if args.quiet else print


def _cmd_grid(args) -> int:
    from . import grid

    g = grid.load(args.config, args.overrides)
    cells = grid.expand(g)
    if args.dry_run:
        print(grid.format_plan(grid.plan(cells)))
        return 0
    _quiet(args)
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


def _cmd_results_export(args) -> int:
    from pathlib import Path

    from .errors import ConfigError
    from .export import export
    from .store import Store

    path = Path(args.workdir) / "results.sqlite"
    if not path.exists():
        raise ConfigError(f"no results store at {path} (run `xstilts run` or `xstilts grid` first)")
    ext = {"lm-eval-json": "json", "csv": "csv", "parquet": "parquet"}[args.format]
    out = args.out or Path(args.workdir) / "export" / f"results.{ext}"
    for written in export(Store(path), args.format, out, run=args.run):
        print(f"wrote {written}")
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from .errors import ConfigError
    from .report import build_report
    from .store import Store
    from .studies import load_sections

    path = Path(args.workdir) / "results.sqlite"
    if not path.exists():
        raise ConfigError(f"no results store at {path} (run `xstilts run` or `xstilts grid` first)")
    out = args.out or str(Path(args.workdir) / "report")
    paths = build_report(Store(path), out, baseline=args.baseline, selection=args.selection, model=args.model,
                         studies=load_sections(Path(args.workdir) / "studies"))
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
    for r in rows:
        for w in r["warnings"]:
            print(f"xstilts: warning: {w}", file=sys.stderr)
    return 0


def _cmd_quickstart(args) -> int:
    from dataclasses import replace

    from .errors import ConfigError
    from .quickstart import DEFAULT_OUT, DataSettings, Settings, quickstart, quickstart_data

    if args.seeds is not None and args.seeds < 1:
        raise ConfigError("--seeds: at least 1")
    if args.data_dir:
        if args.languages:
            raise ConfigError("--languages: only for the offline CLDR quickstart; --data-dir evaluates the "
                              "languages listed in the README")
        s = DataSettings()
        if args.seeds is not None:
            s = replace(s, seeds=tuple(range(args.seeds)))
        quickstart_data(args.data_dir, args.out or DEFAULT_OUT + "-data", s)
        return 0
    s = Settings()
    if args.seeds is not None:
        s = replace(s, seeds=tuple(range(args.seeds)))
    if args.languages:
        s = replace(s, languages=tuple(x.strip() for x in args.languages.split(",") if x.strip()))
    quickstart(args.out or DEFAULT_OUT, s)
    return 0


def _cmd_translate(args) -> int:
    from .errors import ConfigError
    from .translate import GenerationSettings, translate_task

    data_dir = args.data_dir
    if args.config:
        from . import config
        from .pipeline import register_config_tasks

        cfg = config.load(args.config)
        register_config_tasks(cfg)
        data_dir = data_dir or cfg.data_dir
    if not data_dir:
        raise ConfigError("--data-dir: name the folder with the task's data (or a --config with data_dir)")
    for flag, value in (("--batch-size", args.batch_size), ("--num-beams", args.num_beams), ("--limit", args.limit),
                        ("--max-new-tokens", args.max_new_tokens), ("--max-input-tokens", args.max_input_tokens)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag}: at least 1")
    targets = [t.strip() for arg in args.to for t in arg.split(",") if t.strip()]
    settings = GenerationSettings(batch_size=args.batch_size, num_beams=args.num_beams,
                                  max_new_tokens=args.max_new_tokens, max_input_tokens=args.max_input_tokens)
    result = translate_task(args.task, targets, args.model, data_dir, args.out, split=args.split, limit=args.limit,
                            src_lang=args.src_lang, settings=settings, segment=not args.no_segment,
                            with_source=not args.no_source, force=args.force, device=args.device, dtype=args.dtype)
    print(f"\n# {result.task} ({result.split}) translated; summaries in {result.out_dir / result.task}/translate-*.json"
          "\n# paste into a run config:")
    print(result.snippet, end="")
    return 0


def _cmd_study(args) -> int:
    from . import studies

    models = [m for m in args.models or [] if "=" not in m] or None  # key=value after --models are overrides
    overrides = list(args.overrides) + [m for m in args.models or [] if "=" in m]
    cfg = studies.load_study(args.name, args.config, overrides, models=models)
    if args.dry_run:
        print(studies.dry_run(cfg))
        return 0
    failed = {}
    if not args.analyze_only:
        out = studies.run_study(cfg, executor=args.executor, address=args.address)
        failed = out["failed"]
        for rid, msg in failed.items():
            print(f"  FAILED {rid}: {msg}")
    section = studies.analyze(cfg)
    paths = studies.write_section(section, studies.section_dir(cfg))
    if paths:  # the main process only (under accelerate launch)
        print(studies.format_section(section))
        for kind, p in paths.items():
            print(f"{kind:<24} {p}")
    return 1 if failed else 0


def _cmd_forecast(args) -> int:
    import json
    from pathlib import Path

    from . import config
    from .errors import ConfigError

    if args.evaluate:
        from .forecast.evaluate import evaluate_store, format_evaluation

        store = Path(args.store)
        if not store.is_file():
            raise ConfigError(f"--store: no results store at {store}")
        forecasts = {}
        for f in sorted(Path(args.forecasts).glob("*.json")) if args.forecasts else []:
            try:
                r = json.loads(f.read_text())
                forecasts.setdefault((r["model"], r["target"]), {}).update(
                    {name: s["scores"] for name, s in r["selectors"].items()})
            except (ValueError, KeyError, TypeError) as e:
                raise ConfigError(f"{f}: not a forecast written by `xstilts forecast` ({e})") from None
        result = evaluate_store(store, forecasts=forecasts, n_resamples=args.resamples)
        print(format_evaluation(result))
        if args.json:
            Path(args.json).write_text(json.dumps({f"{m} / {t}": r for (m, t), r in result.items()}, indent=1))
        return 0
    if not args.target or not args.candidates:
        raise ConfigError("forecast: name a TARGET and --candidates a,b,c (or use --evaluate)")
    from .forecast.select import format_forecast, forecast

    cfg = config.load(args.config, args.overrides)
    result = forecast(cfg, args.target, [c for c in args.candidates.split(",") if c], examples=args.examples,
                      selectors=tuple(s for s in args.selectors.split(",") if s), short_fraction=args.short_fraction)
    print(format_forecast(result))
    out = Path(args.out or Path(cfg.workdir) / "forecasts")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{Path(cfg.model).name}__{args.target}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"written {path} (scored against a grid by `xstilts forecast --evaluate --forecasts {out}`)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .forecast import SELECTORS  # a plain tuple: importing the package loads no model code

    p = argparse.ArgumentParser(prog="xstilts", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the pipeline of a config: [mlm] -> [intermediate] -> target -> zero-shot eval")
    r.add_argument("config", help="YAML config file")
    r.add_argument("overrides", nargs="*", help="key=value overrides, e.g. target.seeds=[0,1,2]")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines; only the results")
    r.set_defaults(fn=_cmd_run)

    g = sub.add_parser("grid", help="run a grid of models x intermediate settings x targets x seeds")
    g.add_argument("config", help="grid YAML")
    g.add_argument("overrides", nargs="*", help="key=value overrides of the grid config")
    g.add_argument("--dry-run", action="store_true", help="print the plan: phases to train, done, estimated compute")
    g.add_argument("--executor", choices=["local", "ray"], default="local")
    g.add_argument("--address", default=None, help="Ray cluster to join (default: start a local one)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g.set_defaults(fn=_cmd_grid)

    q = sub.add_parser("results", help="query the results store; export CSV or Parquet")
    q.add_argument("--workdir", default="runs")
    q.add_argument("--table", default="metrics", choices=["metrics", "records", "timings", "runs", "environment"])
    q.add_argument("--sql", default=None, help="an SQL query over the store's tables")
    q.add_argument("--export", default=None, help="write to this .csv or .parquet file")
    q.add_argument("--max-rows", type=int, default=60)
    q.set_defaults(fn=_cmd_results)
    qs = q.add_subparsers(dest="results_cmd", metavar="{export}")
    qe = qs.add_parser("export", help="per task and language: values with intervals, task versions, config, "
                                      "code version, environment (lm-evaluation-harness results JSON, CSV or Parquet)")
    qe.add_argument("--format", required=True, choices=["lm-eval-json", "csv", "parquet"])
    qe.add_argument("--run", default=None, help="only this run id (default: every run; seeds of a setting pooled)")
    qe.add_argument("--workdir", default=argparse.SUPPRESS, help="default: the results command's --workdir (runs)")
    qe.add_argument("--out", default=None, help="output file (default: <workdir>/export/results.<ext>)")
    qe.set_defaults(fn=_cmd_results_export)

    rp = sub.add_parser("report", help="HTML + Markdown report (tables, plots, significance) from the store")
    rp.add_argument("--workdir", default="runs")
    rp.add_argument("--out", default=None, help="default: <workdir>/report")
    rp.add_argument("--baseline", default="none", help="the setting deltas are computed against")
    rp.add_argument("--selection", default="en-dev", choices=["en-dev", "target-dev"])
    rp.add_argument("--model", default=None, help="the model to report when the store holds several")
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
    q.add_argument("--out", default=None, help="output folder (results, plot, reusable runs; default "
                                               "xstilts_out/quickstart, or xstilts_out/quickstart-data with --data-dir)")
    q.add_argument("--data-dir", default=None, help="an XTREME-style folder (e.g. ../shared/data): SocialIQA -> "
                                                    "COPA/XCOPA, XNLI and Tatoeba on small slices of the real files")
    q.add_argument("--seeds", type=int, default=None, help="target seeds per arm (default 3)")
    q.add_argument("--languages", default=None, help="zero-shot languages, comma-separated CLDR codes "
                                                      "(default de,fr,es,ru,ja,ar,hi,zh)")
    q.set_defaults(fn=_cmd_quickstart)

    tr = sub.add_parser("translate", help="machine-translate an intermediate task's data (translate-train); "
                                          "prints a tasks: snippet for intermediate.languages")
    tr.add_argument("task", help="task name (`xstilts tasks`), or one defined in --config")
    tr.add_argument("--to", action="append", required=True, metavar="LANG",
                    help="target language, repeatable or comma-separated; LANG=CODE names the model's code "
                         "(e.g. de=deu_Latn)")
    tr.add_argument("--model", required=True, help="seq2seq MT model: hub name or folder (Marian, NLLB, M2M100, "
                                                   "mBART-50); {lang} is filled per target, e.g. "
                                                   "'Helsinki-NLP/opus-mt-en-{lang}'")
    tr.add_argument("--data-dir", default=None, help="folder with the task's data")
    tr.add_argument("--out", required=True, help="output folder: OUT/<task>/<split>-<lang>.jsonl + translate-<lang>.json")
    tr.add_argument("--split", default="train")
    tr.add_argument("--limit", type=int, default=None, help="translate only the first N examples")
    tr.add_argument("--src-lang", default="en")
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument("--num-beams", type=int, default=1, help="1 = greedy (fast)")
    tr.add_argument("--max-new-tokens", type=int, default=None, help="default: 1.5 x the batch's longest input + 10")
    tr.add_argument("--max-input-tokens", type=int, default=512, help="longer inputs are cut (counted in the summary)")
    tr.add_argument("--no-segment", action="store_true", help="translate whole texts, not sentence by sentence")
    tr.add_argument("--no-source", action="store_true", help="do not copy the source-language examples to OUT")
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    tr.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    tr.add_argument("--force", action="store_true", help="translate again languages that are done")
    tr.add_argument("--config", default=None, help="run config whose tasks: and data_dir to use")
    tr.set_defaults(fn=_cmd_translate)

    from .studies import names as study_names

    st = sub.add_parser("study", help="a named grid plus its analysis, written as a report section "
                                      f"({', '.join(study_names())})")
    st.add_argument("name", choices=study_names())
    st.add_argument("overrides", nargs="*", help="key=value overrides of the study config, e.g. seeds=[0,1]")
    st.add_argument("--config", default=None, help="study YAML (default: configs/studies/NAME.yaml)")
    st.add_argument("--models", nargs="+", default=None,
                    help="replace the config's models; presets base, large, xl, xxl, 7b, 8b, 70b or any name/folder")
    st.add_argument("--dry-run", action="store_true", help="print the plan: phases, compute and memory per model")
    st.add_argument("--analyze-only", action="store_true", help="do not train; analyse what the store holds")
    st.add_argument("--executor", choices=["local", "ray"], default="local")
    st.add_argument("--address", default=None, help="Ray cluster to join (default: start a local one)")
    st.set_defaults(fn=_cmd_study)

    fc = sub.add_parser("forecast", help="rank intermediate tasks for a target before training them "
                                         "(dataset embeddings, LogME, English dev after a short fine-tune, "
                                         "largest-first); --evaluate scores selectors against a grid's results")
    fc.add_argument("target", nargs="?", help="the target task")
    fc.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    fc.add_argument("--candidates", default="", help="comma list of intermediate tasks ('none' is always ranked)")
    fc.add_argument("--config", default=None, help="run config (model, data_dir, workdir, tasks:)")
    fc.add_argument("--examples", type=int, default=256, help="examples read per data set")
    fc.add_argument("--selectors", default=",".join(SELECTORS), help="comma list of selectors")
    fc.add_argument("--short-fraction", type=float, default=0.25,
                    help="en-dev-short: share of the target phase's epochs in its short fine-tune")
    fc.add_argument("--out", default=None, help="folder for the forecast JSON (default <workdir>/forecasts)")
    fc.add_argument("--evaluate", action="store_true", help="score selectors against the results in --store")
    fc.add_argument("--store", default="runs/results.sqlite", help="results store (--evaluate)")
    fc.add_argument("--forecasts", default=None, help="folder of forecast JSON files to score too (--evaluate)")
    fc.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples over seeds (--evaluate)")
    fc.add_argument("--json", default=None, help="also write the evaluation as JSON here (--evaluate)")
    fc.set_defaults(fn=_cmd_forecast)

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
    from . import _quiet_libraries, distributed
    from .errors import XstiltsError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = [*args.overrides, *extra]  # key=value overrides written after the options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _quiet_libraries()
    try:
        rc = args.fn(args)
        distributed.shutdown()  # under a launcher: every rank done, the process group closed before exit
        return rc
    except XstiltsError as e:
        print(f"xstilts: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("xstilts: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        from .progress import set_quiet

        set_quiet(False)  # --quiet is one command's (main() may be called again in the same process)


if __name__ == "__main__":
    sys.exit(main())
