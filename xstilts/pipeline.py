"""The pipeline: phases as plain functions, each skipped when its output exists.

    [1 mlm] -> [2 intermediate] -> 3 target fine-tuning -> 4 zero-shot evaluation

A phase's output folder is named by a hash of its resolved config and its
input's key, so an intermediate checkpoint is trained once and reused by every
target and seed that starts from it; a rerun recomputes nothing that is done,
and a killed phase resumes from its last checkpoint.

Under ``accelerate launch`` every process runs this same sequence: rank 0's view
of which phases are done is broadcast, training phases run on all ranks, the
zero-shot evaluation phase on rank 0 alone, only rank 0 writes (checkpoints,
weights, ``done.json``, predictions, store rows), and all ranks meet at a
barrier before a phase starts and once it is complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed

from . import __version__, _quiet_libraries, distributed, progress
from .train import checkpoint
from .train.checkpoint import write_json_atomic
from .config import RunConfig, TrainConfig, selection_mark
from .data import available, featurized, load_aligned, load_examples, task_file, truncation_summary
from .errors import ConfigError, DataError
from .evaluate import EvalSet, embed, evaluate
from .families import get_family
from .model import MultiTaskModel, add_lora, load_encoder, load_tokenizer, merge_lora
from .tasks import TaskSpec, expand, get, register
from .tracking import Trackers, flatten
from .train import TrainTask, train


@dataclass
class PhaseRecord:
    kind: str
    key: str
    path: Path
    status: str  # "trained", "reused"
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # the resolved config the phase key hashes (its config.json)
    seed: int | None = None  # the target seed of a target or eval phase


@dataclass
class RunResult:
    phases: list[PhaseRecord]
    rows: list[dict]  # task, lang, split, metric, value, n, seed, target


def phase_key(kind: str, config: dict, input_key: str) -> str:
    blob = json.dumps({"kind": kind, "config": config, "input": input_key, "code": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_id_for(cfg: RunConfig) -> str:
    """The id of a run: a hash of its resolved config, so ``xstilts run`` and a grid cell of the same config
    are the same run (recorded once, its rows replaced on a rerun). Also the run's ``config_hash``."""
    blob = json.dumps(cfg.identity(), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def register_config_tasks(cfg: RunConfig) -> None:
    for t in cfg.tasks:
        spec = TaskSpec(**{**t.model_dump(), "languages": tuple(t.languages), "labels": tuple(t.labels),
                           "metrics": tuple(t.metrics)})
        try:
            existing = get(spec.name)
        except ConfigError:
            existing = None
        if existing is not None and existing != spec:
            register(spec, replace=True)
        elif existing is None:
            register(spec)


def _subset(examples: list[dict], fraction: float, seed: int) -> list[dict]:
    if fraction >= 1.0:
        return examples
    k = max(1, int(round(len(examples) * fraction)))
    keep = np.sort(np.random.default_rng(seed).permutation(len(examples))[:k])
    return [examples[i] for i in keep]


class Pipeline:
    """Runs the phases of one config; ``run()`` returns phase records and metric rows."""

    def __init__(self, cfg: RunConfig, log=print, execute: bool = True):
        """``execute=False`` plans: every phase gets its key and status ("done"/"todo"); nothing runs."""
        self.cfg, self.log, self.execute = cfg, log, execute
        if execute and not distributed.is_main():
            self.log = lambda m: None  # one copy of the log, from rank 0
        _quiet_libraries()
        self.workdir = Path(cfg.workdir)
        self.cache = self.workdir / "cache"
        self.phases: list[PhaseRecord] = []
        register_config_tasks(cfg)
        self._tokenizer = None
        self.trackers = Trackers([], "", "", {})  # opened by run()

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.cfg.model)
        return self._tokenizer

    # ------------------------------------------------------------ data

    def _features(self, spec: TaskSpec, examples, split, lang, train_cfg: TrainConfig, label_spec=None,
                  subset_seed: int | None = None):
        """Featurize through ``label_spec``'s family and labels (the target when training on another task's data).

        ``subset_seed``: the seed that drew ``examples`` as a ``train.fraction < 1`` subset; part of the
        cache key, so each seed's subset is featurized (and trained on) as drawn.
        """
        label_spec = label_spec or spec
        source = [spec.name, split, lang, str(task_file(spec, split, lang, self.cfg.data_dir)), len(examples),
                  train_cfg.limit, train_cfg.fraction]
        if train_cfg.fraction < 1:
            source.append(subset_seed)
        return featurized(label_spec, examples, self.tokenizer, max_length=train_cfg.max_length, cache_dir=self.cache,
                          source_key=json.dumps(source), stride=train_cfg.doc_stride)

    def _load(self, spec, split, lang, limit=None):
        return load_examples(spec, split, lang, self.cfg.data_dir, limit=limit, skip_invalid=self.cfg.skip_invalid)

    def _dev(self, spec: TaskSpec, train_cfg: TrainConfig, label_spec=None, lang: str | None = None) -> EvalSet | None:
        lang = lang or spec.train_lang
        if spec.dev_split not in spec.files or not available(spec, spec.dev_split, lang, self.cfg.data_dir):
            return None
        examples = self._load(spec, spec.dev_split, lang, train_cfg.dev_limit)
        target = label_spec or spec
        return EvalSet(target, lang, examples, self._features(spec, examples, spec.dev_split, lang, train_cfg, target))

    def _train_task(self, spec: TaskSpec, train_cfg: TrainConfig, seed: int, languages=None, label_spec=None,
                    split: str = "train"):
        examples = []
        for lang in languages or [spec.train_lang]:
            examples += self._load(spec, split, lang, train_cfg.limit)
        examples = _subset(examples, train_cfg.fraction, seed)
        label_spec = label_spec or spec
        if get_family(label_spec.family).NEEDS_LABELS and not label_spec.labels:
            # e.g. CCG supertags: the label set is whatever the training data uses
            found = get_family(label_spec.family).labels_used(examples)
            label_spec = dataclasses.replace(label_spec, labels=tuple(sorted(found)))
        rows = self._features(spec, examples, split, "+".join(languages or [spec.train_lang]), train_cfg, label_spec,
                              subset_seed=seed)
        dev = self._dev(spec, train_cfg, label_spec) if spec.dev_split != split else None
        return TrainTask(label_spec, rows, dev)

    def _data_identity(self, names: list[str]) -> dict:
        specs = [get(n) for n in names]
        out = {"data_dir": self.cfg.data_dir, "tasks": [[s.name, s.version, s.files, s.labels] for s in specs]}
        if self.cfg.data_dir is None:  # read from the hub copies: their mapping is part of the data's identity
            out["hub"] = [dataclasses.asdict(s.hub) if s.hub else None for s in specs]
        return out

    # ------------------------------------------------------------ phases

    def _phase(self, kind: str, config: dict, input_key: str, body, all_ranks: bool = True) -> PhaseRecord:
        """Run ``body`` unless the phase is done. ``all_ranks=False``: under a launcher rank 0 runs it alone."""
        key = phase_key(kind, config, input_key)
        resolved = {"kind": kind, "config": config, "input": input_key}
        path = self.workdir / "phases" / f"{kind}-{key}"
        done = path / "done.json"
        main = distributed.is_main()
        if self.execute:
            distributed.barrier()  # the previous phase is complete on every rank
        if distributed.broadcast(done.exists()) if self.execute else done.exists():
            rec = PhaseRecord(kind, key, path, "reused" if self.execute else "done", summary=json.loads(done.read_text()))
            if self.execute:
                self.log(f"[{kind}] reusing {path}")
        elif not self.execute:
            rec = PhaseRecord(kind, key, path, "todo", summary={"config": config})
        else:
            if main:
                path.mkdir(parents=True, exist_ok=True)
                write_json_atomic(path / "config.json", resolved)
            self.log(f"[{kind}] running -> {path}")
            t0 = time.perf_counter()
            if all_ranks:
                summary = body(path) or {}
            elif main:
                with distributed.solo():
                    summary = body(path) or {}
            if main:
                summary["seconds"] = time.perf_counter() - t0
                write_json_atomic(done, summary)  # written last: its presence means the phase is complete
            distributed.barrier()  # ... and every rank sees it complete
            if not main:
                summary = json.loads(done.read_text())
            rec = PhaseRecord(kind, key, path, "trained", summary["seconds"], summary)
        rec.config = json.loads(json.dumps(resolved, default=str))  # as config.json holds it
        self.phases.append(rec)
        return rec

    def _lora(self):
        return self.cfg.lora.model_dump() if self.cfg.lora else None

    def _encoder_from(self, rec: PhaseRecord | None):
        return load_encoder(str(rec.path / "encoder") if rec else self.cfg.model)

    def _train_phase(self, path: Path, encoder_from, tasks: list[TrainTask], train_cfg, seed, mixture=None, *,
                     desc: str, keep: bool = True):
        """Train ``tasks``; write the encoder and heads (``keep=False``: write nothing and drop the checkpoints
        once the phase is complete, leaving done.json's summary)."""
        def build():
            set_seed(seed)  # head initialisation depends on the seed, not on what ran before in this process
            encoder = self._encoder_from(encoder_from)
            if self.cfg.gradient_checkpointing:
                encoder.gradient_checkpointing_enable()
            model = MultiTaskModel(encoder)
            for t in tasks:
                model.add_task(t.spec, vocab_size=len(self.tokenizer))
            if self.cfg.lora:
                model.encoder = add_lora(model.encoder, self.cfg.lora.model_dump())
            return model

        model = build()
        result = train(model, tasks, train_cfg, path / "checkpoints", tokenizer=self.tokenizer, seed=seed,
                       mixture=mixture, log=lambda m: self.log(f"  {m}"), desc=desc, track=self.trackers.scoped(desc))
        if distributed.is_main() and not keep:
            shutil.rmtree(path / "checkpoints", ignore_errors=True)
        elif distributed.is_main():  # the phase's outputs, written once
            if result.sharded:  # FSDP sharded `model` in place: rank 0 rebuilds it whole from the full checkpoint
                model = build()
                checkpoint.load_weights(result.weights, model)
            model.encoder = merge_lora(model.encoder)
            model.encoder.save_pretrained(path / "encoder", safe_serialization=True)
            model.save_heads(path)
        summary = {"steps": result.steps, "best_dev": result.best_score, "drawn": result.drawn,
                   "timings": result.timings, "history": result.history,
                   "train_examples": {t.spec.name: len(t.rows) for t in tasks}, "embedding": result.embedding}
        truncated = {t.spec.name: self._truncated(t.rows, t.spec.name) for t in tasks}
        if any(truncated.values()):
            summary["truncated"] = {k: v for k, v in truncated.items() if v}
        if result.per_rank:
            summary["per_rank"] = result.per_rank
        return summary

    def _truncated(self, rows, what: str) -> dict | None:
        """:func:`truncation_summary` of ``rows``, logged when anything was cut."""
        t = truncation_summary(rows)
        if t and t["examples_truncated"]:
            self.log(f"  {what}: truncated {t['examples_truncated']} of {t['examples']} examples to max_length "
                     f"({t['context']} contexts, {t['choice']} choices cut)")
        return t

    def mlm_phase(self, prev: PhaseRecord | None) -> PhaseRecord:
        mlm = self.cfg.mlm
        config = {"files": mlm.files, "train": mlm.train.model_dump(), "model": self.cfg.model}
        spec = self._mlm_spec()
        return self._phase("mlm", config, prev.key if prev else self.cfg.model,
                           lambda path: self._train_phase(path, prev, [self._mlm_task(mlm.train)], mlm.train, 0,
                                                              desc="mlm"))

    def _mlm_spec(self) -> TaskSpec:
        return TaskSpec(name="mlm", family="mlm", languages=(), files={})

    def _mlm_task(self, train_cfg) -> TrainTask:
        examples = []
        for f in self.cfg.mlm.files:
            try:
                lines = Path(f).read_text(encoding="utf-8").splitlines()
            except UnicodeDecodeError as e:
                raise DataError(f, None, None, f"not UTF-8 text ({e})") from None
            examples += [{"text": x} for x in lines if x.strip()]
        spec = self._mlm_spec()
        rows = featurized(spec, examples, self.tokenizer, max_length=train_cfg.max_length, cache_dir=self.cache,
                          source_key=json.dumps([sorted(self.cfg.mlm.files), len(examples)]))
        return TrainTask(spec, rows)

    def intermediate_phase(self, prev: PhaseRecord | None) -> PhaseRecord:
        inter = self.cfg.intermediate
        names = [n for t in inter.tasks for n in expand(t)]
        config = {"tasks": names, "mixture": inter.mixture.model_dump(), "train": inter.train.model_dump(),
                  "seed": inter.seed, "languages": inter.languages, "model": self.cfg.model, "lora": self._lora(),
                  "mlm_mix": self.cfg.mlm.files if self.cfg.mlm.mode == "mix" else None,
                  "data": self._data_identity(names)}
        if not inter.keep_weights:  # absent at the default, so existing phase keys hold
            if self.cfg.target.tasks:
                raise ConfigError("intermediate.keep_weights: false writes no encoder, so no target phase can "
                                  f"follow it (target.tasks is {self.cfg.target.tasks})")
            config["keep_weights"] = False

        def body(path):
            tasks = [self._train_task(get(n), inter.train, inter.seed, inter.languages) for n in names]
            if self.cfg.mlm.mode == "mix":
                tasks.append(self._mlm_task(inter.train))
            return self._train_phase(path, prev, tasks, inter.train, inter.seed, inter.mixture, desc="intermediate",
                                     keep=inter.keep_weights)

        return self._phase("intermediate", config, prev.key if prev else self.cfg.model, body)

    def target_phase(self, target: str, seed: int, prev: PhaseRecord | None, *, keep: bool = True) -> PhaseRecord:
        """Fine-tune on ``target``'s English data. ``keep=False`` (``xstilts forecast``'s short fine-tunes): write
        no model, only done.json (English dev score, timings); such a phase cannot be evaluated."""
        spec = get(target)
        train_name = self.cfg.target.train_task or spec.train_task
        train_spec = get(train_name) if train_name else spec
        if train_spec.family != spec.family:
            raise ConfigError(f"task {target!r}: train_task {train_spec.name!r} is a {train_spec.family} task, "
                              f"not {spec.family}")
        tcfg = self.cfg.target.train
        split = self.cfg.target.train_split
        config = {"target": target, "train": tcfg.model_dump(), "seed": seed, "model": self.cfg.model, "lora": self._lora(),
                  "train_task": train_spec.name, "train_split": split,
                  "data": self._data_identity([target, train_spec.name])}
        if self.cfg.selection == "target-dev":  # absent at the default, so en-dev phase keys are unchanged
            config["selection"] = {"rule": "target-dev", "languages": self._target_dev_languages(spec)}
        if not keep:  # absent at the default, so existing phase keys hold
            config["keep_weights"] = False

        def body(path):
            task = self._train_task(train_spec, tcfg, seed, label_spec=spec, split=split)
            labelled = task.spec  # the target with its label set (taken from the training data when it names none)
            own_dev = self._dev(spec, tcfg, labelled) if spec is not train_spec and spec.dev_split != split else None
            task.dev = own_dev or task.dev
            if self.cfg.selection == "target-dev":  # NOT zero-shot: target-language dev sets pick the checkpoint
                task.dev = [self._dev(spec, tcfg, labelled, lang=lang) for lang in config["selection"]["languages"]]
            summary = self._train_phase(path, prev, [task], tcfg, seed, desc=_target_desc(target, seed), keep=keep)
            if labelled.labels != spec.labels:  # the eval phase builds the head and decodes with this set
                summary["labels"] = list(labelled.labels)
            return summary

        rec = self._phase("target", config, prev.key if prev else self.cfg.model, body)
        rec.seed = seed
        return rec

    def _english_dev(self, spec: TaskSpec) -> EvalSet | None:
        """The target's English dev set, or its training task's (XCOPA -> COPA val)."""
        tcfg = self.cfg.target.train
        dev = self._dev(spec, tcfg)
        train_name = self.cfg.target.train_task or spec.train_task
        if dev is None and train_name:
            dev = self._dev(get(train_name), tcfg, label_spec=spec)
        if dev is not None:
            dev.split = "dev"
        return dev

    def _target_dev_languages(self, spec: TaskSpec) -> list[str]:
        """``selection: target-dev``: the evaluation languages other than English that have a dev file."""
        langs = [x for x in self.cfg.eval.languages or spec.languages if x != spec.train_lang]
        have = [x for x in langs if spec.dev_split in spec.files
                and task_file(spec, spec.dev_split, x, self.cfg.data_dir).exists()]
        if not have:
            raise ConfigError(f"selection: target-dev, but task {spec.name!r} has no {spec.dev_split!r} file in any "
                              f"target language ({', '.join(langs) or 'none'}); use selection: en-dev")
        return have

    def _languages(self, spec: TaskSpec, split: str) -> list[str]:
        if self.cfg.eval.languages:
            unknown = [x for x in self.cfg.eval.languages if x not in spec.languages]
            if unknown:
                raise ConfigError(f"eval.languages: {unknown} not languages of {spec.name!r} "
                                  f"({', '.join(spec.languages)})")
            return list(self.cfg.eval.languages)
        present = [x for x in spec.languages if available(spec, split, x, self.cfg.data_dir)]
        if not present:  # nothing to evaluate is a mistake, not an empty result
            where = [str(task_file(spec, split, x, self.cfg.data_dir)) for x in spec.languages[:2]]
            other = [s for s in spec.files if s not in (split, "train")
                     and any(available(spec, s, x, self.cfg.data_dir) for x in spec.languages)]
            raise ConfigError(f"task {spec.name!r}: no {split!r} file in any of its {len(spec.languages)} languages "
                              f"(looked for {', '.join(where)}, ...)"
                              + (f"; it has {', '.join(repr(s) for s in other)}: set eval.split" if other else ""))
        missing = sorted(set(spec.languages) - set(present))
        if missing:
            self.log(f"[eval] {spec.name}: no {split} file for {', '.join(missing)}; evaluating {len(present)} languages")
        return present

    @staticmethod
    def _labelled(spec: TaskSpec, trained: PhaseRecord | None) -> TaskSpec:
        """``spec`` with the label set its target phase trained with, when the task names none."""
        labels = (trained.summary or {}).get("labels") if trained is not None else None
        if spec.labels or not labels or not get_family(spec.family).NEEDS_LABELS:
            return spec
        return dataclasses.replace(spec, labels=tuple(labels))

    def eval_phase(self, target: str, prev: PhaseRecord, seed: int | None) -> PhaseRecord:
        """Zero-shot evaluation of ``prev``; ``seed`` is the target seed it belongs to (None: seedless)."""
        spec = self._labelled(get(target), prev)
        ev = self.cfg.eval
        split = ev.split or spec.eval_split
        langs = self._languages(spec, split)
        config = {"target": target, "family": spec.family, "split": split, "languages": langs, "limit": ev.limit,
                  "layer": ev.retrieval_layer, "max_length": self.cfg.target.train.max_length,
                  "data": self._data_identity([target])}

        family = get_family(spec.family)

        def body(path):
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            if not family.TRAINS:  # retrieval: scored straight on the encoder
                encoder = self._encoder_from(prev).to(device)
                model = None
            else:
                model = MultiTaskModel(self._encoder_from(prev))
                model.add_task(spec)
                model.load_heads(prev.path)
                model.to(device)
            rows, per_example, truncated = [], {}, {}
            (path / "predictions").mkdir(exist_ok=True)
            bar = progress.bar(len(langs), f"eval {target}", unit="lang", log=self.log)
            for lang in langs:
                if not family.TRAINS:
                    hits = []
                    scores, examples = self._encoder_scores(spec, encoder, split, lang, hits), hits
                    if hits:  # Tatoeba: 1/0 per query sentence
                        per_example[lang] = hits
                else:
                    examples = self._load(spec, split, lang, ev.limit)
                    feats = self._features(spec, examples, split, lang, self.cfg.target.train)
                    if (t := self._truncated(feats, f"{target} {lang}")) is not None:
                        truncated[lang] = t
                    scores, preds = evaluate(model, EvalSet(spec, lang, examples, feats, split), self.tokenizer,
                                             ev.batch_size)
                    # span QA keys answers by question id (the XTREME submission layout)
                    write_json_atomic(path / "predictions" / f"{lang}.json", family.prediction_record(preds, examples))
                    if (scored := family.per_example_scores(preds, examples)) is not None:  # for paired bootstrap
                        per_example[lang] = scored
                for metric, value in scores.items():
                    rows.append({"task": target, "lang": lang, "split": split, "metric": metric,
                                 "value": float(value), "n": len(examples)})
                bar.wrap(self.log)(f"  {target} {lang}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
                bar.update(1)
            bar.close()
            trained_on_dev = self.cfg.target.train_split == spec.dev_split  # its English dev is training data
            dev = self._english_dev(spec) if model is not None and not trained_on_dev else None
            if dev is not None and not (split == dev.split and dev.lang in langs):
                # English dev of the target: what the paper selects intermediate settings by
                scores, _ = evaluate(model, dev, self.tokenizer, ev.batch_size)
                rows += [{"task": target, "lang": dev.lang, "split": "dev", "metric": m, "value": float(v),
                          "n": len(dev.examples)} for m, v in scores.items()]
            out = {"rows": rows, "task": target, "split": split, "example_scores": per_example}
            return {**out, "truncated": truncated} if truncated else out

        rec = self._phase("eval", config, prev.key if prev else self.cfg.model, body, all_ranks=False)
        rec.seed = seed
        return rec

    def _encoder_scores(self, spec, encoder, split, lang, per_example=None):
        """Scores of a family that does not train (retrieval), from pooled embeddings of ``encoder``."""
        ev, tcfg = self.cfg.eval, self.cfg.target.train

        def embed_texts(texts, key):
            feats = featurized(spec, [{"text": t} for t in texts], self.tokenizer, max_length=tcfg.max_length,
                               cache_dir=self.cache, source_key=json.dumps([spec.name, key, len(texts), texts[:3]]))
            return embed(encoder, feats, self.tokenizer, ev.retrieval_layer, ev.batch_size)

        return get_family(spec.family).score_encoder(
            spec, split, lang, lambda s, l: task_file(spec, s, l, self.cfg.data_dir), embed_texts, limit=ev.limit,
            per_example=per_example, aligned=lambda s, l: load_aligned(spec, s, l, self.cfg.data_dir))

    # ------------------------------------------------------------ the whole run

    def run(self) -> RunResult:
        cfg = self.cfg
        if not cfg.target.tasks and not cfg.intermediate.tasks:
            raise ConfigError("nothing to do: set intermediate.tasks and/or target.tasks")
        for name in cfg.target.tasks + cfg.intermediate.tasks:
            expand(name)  # unknown names fail here, before any training
        if self.execute and cfg.log_with and distributed.is_main():
            self.trackers = open_trackers(cfg)
        try:
            return self._run()
        finally:
            self.trackers.finish()

    def _tracked(self, desc: str, rec: PhaseRecord) -> PhaseRecord:
        """A reused training phase's recorded curve goes to the trackers too (a trained one logged live)."""
        if rec.status == "reused":
            self.trackers.replay(desc, rec.summary.get("history", []))
        return rec

    def upstream(self) -> PhaseRecord | None:
        """The phases before the target phase ([MLM] -> [intermediate]), run or reused; the last one's record
        (None: the target phase starts from the pretrained model)."""
        cfg = self.cfg
        prev = None
        if cfg.mlm.mode == "phase":
            if not cfg.mlm.files:
                raise ConfigError("mlm.mode is 'phase' but mlm.files is empty")
            prev = self._tracked("mlm", self.mlm_phase(prev))
        if cfg.intermediate.tasks:
            prev = self._tracked("intermediate", self.intermediate_phase(prev))
        return prev

    def _run(self) -> RunResult:
        cfg = self.cfg
        prev = self.upstream()
        rows = []
        for target in cfg.target.tasks:
            spec = get(target)
            if not get_family(spec.family).TRAINS:  # retrieval: scored straight on the phase-2 encoder
                rec = self.eval_phase(target, prev, seed=None)
                rows += [{**r, "seed": None} for r in rec.summary.get("rows", [])]
                self.trackers.results(target, rec.summary.get("rows", []), step=0)
                continue
            for seed in cfg.target.seeds:
                trained = self._tracked(_target_desc(target, seed), self.target_phase(target, seed, prev))
                rec = self.eval_phase(target, trained, seed)
                rows += [{**r, "seed": seed} for r in rec.summary.get("rows", [])]
                self.trackers.results(f"{target}/s{seed}", rec.summary.get("rows", []),
                                      step=trained.summary.get("steps", 0))
        return RunResult(self.phases, rows)


def _target_desc(target: str, seed: int) -> str:
    return f"target/{target}/s{seed}"


def open_trackers(cfg: RunConfig) -> Trackers:
    """The run's trackers, named by its run id; hyperparameters: the config and every phase's key."""
    keys = {}
    for i, p in enumerate(plan(cfg).phases):
        done = p.path / "config.json"  # a done phase's summary is its results; its config is kept beside them
        config = json.loads(done.read_text())["config"] if p.status == "done" and done.exists() else p.summary["config"]
        keys[f"phase.{i:02d}.{p.kind}" + (f".{config['target']}" if "target" in config else "")] = p.key
    logging_dir = cfg.logging_dir or str(Path(cfg.workdir) / "logs")
    return Trackers(cfg.log_with, logging_dir, phase_key("run", cfg.identity(), ""),
                    {**flatten(cfg.model_dump()), **keys})


def run(cfg: RunConfig, log=print) -> RunResult:
    return Pipeline(cfg, log).run()


def plan(cfg: RunConfig) -> RunResult:
    """The phases ``cfg`` needs, with keys and status ("done"/"todo"); nothing is trained."""
    return Pipeline(cfg, log=lambda m: None, execute=False).run()


def setting_label(cfg: RunConfig) -> str:
    """A short name for the intermediate setting of a plain run ("none", "siqa", "siqa+mlm", ...)."""
    parts = list(cfg.intermediate.tasks) or ["none"]
    if cfg.mlm.mode != "off":
        parts.append("mlm")
    label = "+".join(parts)
    if cfg.intermediate.train.fraction < 1:
        label += f"@{cfg.intermediate.train.fraction:g}"
    if cfg.intermediate.languages:
        label += "[" + ",".join(cfg.intermediate.languages) + "]"
    return label


def record(store, run_id: str, cfg: RunConfig, result: RunResult, *, setting: str | None = None,
           target: str | None = None, seed: int | None = None) -> None:
    """Write a finished run (config, phases with timings, metric rows, environment) into the results store."""
    from .store import NO_SEED, environment_info

    if not distributed.is_main():
        return  # under a launcher rank 0 records the run once
    config = cfg.model_dump()
    store.add_run(run_id, config=config, config_hash=run_id_for(cfg), model=cfg.model,
                  setting=(setting or setting_label(cfg)) + selection_mark(cfg.selection),
                  target=target or ",".join(cfg.target.tasks),
                  seed=seed if seed is not None else (cfg.target.seeds[0] if len(cfg.target.seeds) == 1 else None),
                  labels={"selection": cfg.selection})
    for p in result.phases:
        t = p.summary.get("timings", {})
        store.add_phase(run_id, p.key, p.kind, status=p.status, config=p.config, seed=p.seed,
                        wall_s=p.summary.get("seconds"), s_per_epoch=t.get("s_per_epoch"),
                        examples_per_s=t.get("examples_per_s"), tokens_per_s=t.get("tokens_per_s"),
                        peak_mem_mb=t.get("peak_mem_mb"), path=str(p.path))
        if p.kind == "eval":
            seed = NO_SEED if p.seed is None else p.seed  # each seed's eval phase keeps its own rows
            store.add_metrics(run_id, p.key, p.summary.get("rows", []), seed=seed)
            task, split = p.summary.get("task"), p.summary.get("split")
            for lang, scores in p.summary.get("example_scores", {}).items():
                store.add_example_scores(run_id, task, lang, split, "accuracy", np.asarray(scores, dtype=np.float32),
                                         seed=seed, phase_key=p.key)
    store.add_environment(run_id, environment_info())
