"""Progress output: plain lines in a log file, a live bar on a terminal, nothing with --quiet."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import yaml

from conftest import TOY_TASKS
from xstilts import cli, progress

REPO = Path(__file__).resolve().parents[1]


def test_plain_lines_every_five_percent_with_the_postfix_fields(monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_MIN_S", 0.0)  # no minimum time between lines (10 s by default)
    lines = []
    bar = progress.bar(100, "target/x/s0", unit="step", log=lines.append)  # pytest's stderr is not a terminal
    for k in range(1, 101):
        bar.update(1, examples=4, loss=1.0 / k, lr=1e-3)
    bar.close()
    assert len(lines) == 21  # step 1, then 5, 10, ..., 100
    assert [int(re.search(r"step (\d+)/100", x).group(1)) for x in lines] == [1] + list(range(5, 101, 5))
    assert lines[10].startswith("target/x/s0: step 50/100, loss 0.0200, lr 1.00e-03, ex/s ")
    assert re.search(r"elapsed \d+:\d\d:\d\d, ETA \d+:\d\d:\d\d$", lines[10])


def test_quiet_and_other_ranks_log_nothing():
    lines = []
    progress.bar(10, "x", log=lines.append, show=False).update(10)
    progress.set_quiet(True)
    try:
        progress.bar(10, "x", log=lines.append).update(10)
    finally:
        progress.set_quiet(False)
    assert lines == []


def _config(tmp_path, tiny_model, toy_data, name) -> Path:
    raw = {"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / name), "tasks": TOY_TASKS,
           "target": {"tasks": ["toy_topic"], "train": {"lr": 1e-3, "batch_size": 16, "max_steps": 8, "eval_every": 4,
                                                        "max_length": 32}},
           "eval": {"languages": ["en", "de"]}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "120"}


def test_plain_lines_wait_at_least_the_minimum_time_except_the_last():
    lines = []
    bar = progress.bar(100, "x", unit="step", log=lines.append)
    for _ in range(100):
        bar.update(1)
    assert [x.split(",")[0] for x in lines] == ["x: step 100/100"]  # a fast phase: only its last line


def test_run_with_output_to_a_file_has_plain_lines(tmp_path, tiny_model, toy_data, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_MIN_S", 0.0)
    # stdout and stderr to a file, as `xstilts run cfg.yaml > run.log 2>&1` does
    log = tmp_path / "run.log"
    with open(log, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        rc = cli.main(["run", str(_config(tmp_path, tiny_model, toy_data, "file"))])
    text = log.read_text()
    assert rc == 0, text
    assert "\r" not in text and "\x1b" not in text
    # the phase's last line: step, loss, lr (decayed linearly to 0), examples/s, elapsed, ETA
    assert re.search(r"target/toy_topic/s0: step 8/8, loss \d+\.\d{4}, lr 0\.00e\+00, ex/s \d+\.\d{4}, "
                     r"elapsed \d:\d\d:\d\d, ETA 0:00:00", text), text
    assert re.search(r"target/toy_topic/s0: step 1/8, loss \d+\.\d{4}, lr 8\.75e-04", text), text
    assert re.search(r"eval toy_topic: lang 2/2", text), text


def test_run_on_a_terminal_shows_a_bar(tmp_path, tiny_model, toy_data):
    # a run on a pseudo-terminal: tqdm redraws a bar in place (carriage returns), with the postfix
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the terminal, 120 columns wide (a new one has 0)
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "xstilts.cli", "run",
                                   str(_config(tmp_path, tiny_model, toy_data, "tty"))], _env())
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "\r" in text
    bar = [x for x in re.split(r"[\r\n]", text) if x.startswith("target/toy_topic/s0:")]
    assert any(re.search(r"\|\s*8/8 \[", x) and "loss=" in x and "lr=" in x and "ex/s=" in x for x in bar), repr(text[-2500:])
    assert not re.search(r"target/toy_topic/s0: step \d+/8, loss", text)  # no plain lines on a terminal


def test_quiet_run_prints_only_the_results(tmp_path, tiny_model, toy_data, capsys):
    assert cli.main(["run", str(_config(tmp_path, tiny_model, toy_data, "quiet")), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "step" not in out.out + out.err and "[target]" not in out.out
    assert "toy_topic" in out.out and "recorded in" in out.out
    assert not progress.is_quiet()  # --quiet does not outlive the command
