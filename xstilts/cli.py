"""The ``xstilts`` command line. User mistakes print a one-line reason and exit 2."""

from __future__ import annotations

import argparse
import sys


def _cmd_run(args) -> int:
    from . import config, pipeline
    from .report import format_rows

    cfg = config.load(args.config, args.overrides)
    result = pipeline.run(cfg)
    reused = sum(p.status == "reused" for p in result.phases)
    print(f"\n{len(result.phases)} phases ({reused} reused from {cfg.workdir}/phases)")
    print(format_rows(result.rows))
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xstilts", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the pipeline of a config: [mlm] -> [intermediate] -> target -> zero-shot eval")
    r.add_argument("config", help="YAML config file")
    r.add_argument("overrides", nargs="*", help="key=value overrides, e.g. target.seeds=[0,1,2]")
    r.set_defaults(fn=_cmd_run)

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
