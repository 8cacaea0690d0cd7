"""Progress output: a tqdm bar per phase on a terminal, plain log lines otherwise, nothing with ``--quiet``.

    bar = progress.bar(total_steps, "target xnli s0", unit="step", log=log)
    bar.update(1, loss=0.41, lr=2e-5, examples=32)   # per optimizer step
    say = bar.wrap(log)                               # log lines that do not tear the bar
    bar.close()

On a terminal (stderr is a tty) the bar shows steps, loss, learning rate, examples/s and tqdm's rate and
ETA. When stderr is a file or a pipe, a plain line with the same numbers is logged every ~5% of the phase
(and at least every :data:`PLAIN_EVERY_S` seconds), no sooner than :data:`PLAIN_MIN_S` seconds after the
previous one (a short phase logs little), and at the phase's end; a log file holds no carriage returns or
ANSI codes. ``plain=False`` bars (featurizing, per-batch evaluation) show on a terminal only.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext

from tqdm import tqdm

PLAIN_EVERY_S = 60.0
PLAIN_MIN_S = 10.0
_quiet = False


def set_quiet(quiet: bool = True) -> None:
    """Silence every bar and plain progress line of this process (the CLI's ``--quiet``)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def on_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _fmt(key: str, value) -> str:
    if key == "lr":
        return f"lr {value:.2e}"
    return f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"


class Bar:
    """One phase's progress; see the module doc. ``update`` keyword values become postfix fields."""

    def __init__(self, total: int, desc: str, *, unit: str = "it", initial: int = 0, log=print, plain: bool = True,
                 show: bool = True):
        self.total, self.desc, self.unit, self.log = total, desc, unit, log
        self.n, self.examples, self.t0 = initial, 0, time.perf_counter()
        self._initial, self._last_line, self._next_line = initial, self.t0, initial
        self._every = max(1, total // 20)
        self._tqdm = None
        show = show and not _quiet
        self._plain = show and plain and not on_terminal()
        if show and on_terminal():
            self._tqdm = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                              leave=plain, file=sys.stderr)

    def update(self, n: int = 1, *, examples: int = 0, **fields) -> None:
        self.n += n
        self.examples += examples
        elapsed = time.perf_counter() - self.t0
        if examples or self.examples:
            fields["ex/s"] = self.examples / elapsed if elapsed > 0 else 0.0
        if self._tqdm is not None:
            self._tqdm.set_postfix({k: (f"{v:.2e}" if k == "lr" else f"{v:.4g}" if isinstance(v, float) else v)
                                    for k, v in fields.items()}, refresh=False)
            self._tqdm.update(n)
        elif self._plain and (self.n >= self.total or self._due(time.perf_counter() - self._last_line)):
            done = self.n - self._initial
            eta = elapsed / done * (self.total - self.n) if done > 0 else 0.0
            parts = [f"{self.desc}: {self.unit} {self.n}/{self.total}"] + [_fmt(k, v) for k, v in fields.items()]
            self.log(", ".join(parts) + f", elapsed {_hms(elapsed)}, ETA {_hms(eta)}")
            self._last_line = time.perf_counter()
            self._next_line = (self.n // self._every + 1) * self._every

    def _due(self, since_last: float) -> bool:
        return since_last >= PLAIN_MIN_S and (self.n >= self._next_line or since_last >= PLAIN_EVERY_S)

    def wrap(self, log):
        """``log`` made safe to call while this bar is drawn (the bar is cleared, the line printed, redrawn)."""
        def say(message: str) -> None:
            with tqdm.external_write_mode(file=sys.stderr) if self._tqdm is not None else nullcontext():
                log(message)
        return say

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(total: int, desc: str, *, unit: str = "it", initial: int = 0, log=print, plain: bool = True,
        show: bool = True) -> Bar:
    """A :class:`Bar`; ``show=False`` (ranks other than 0) draws and logs nothing."""
    return Bar(total, desc, unit=unit, initial=initial, log=log, plain=plain, show=show)
