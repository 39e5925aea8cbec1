"""What the command line prints: messages, progress, and errors turned into exit codes.

Results go to stdout; everything else (progress, notes, errors) goes to stderr, so
``annscale info --json x.h5ad | jq`` works. An error prints one line
``annscale <command>: error: <message>`` and exits non-zero (2 for usage errors, 1 for
everything else); ``--debug`` prints the traceback too.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..progress import LineProgress, TaskProgress

__all__ = [
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "UsageError",
    "ProblemsFound",
    "Console",
    "run_guarded",
    "show_warnings_briefly",
]

EXIT_OK = 0
EXIT_PROBLEMS = 1
"""Validation found problems, or the job failed."""
EXIT_USAGE = 2
"""The command line itself is wrong (as argparse exits for unknown options)."""


class UsageError(Exception):
    """A mistake in the command line: bad option value, unparsable ``--obs``, missing input."""


class ProblemsFound(Exception):
    """The command ran but found problems it already reported (exit 1, no extra message)."""


@dataclass
class Console:
    """Where a command writes: results to ``out``, notes and progress to ``err``.

    ``quiet`` silences notes and progress (results and errors are still printed).
    ``interval`` is the number of seconds between progress log lines when ``err`` is not a
    terminal (None: :data:`annscale.progress.LOG_INTERVAL_SECONDS`).
    """

    quiet: bool = False
    debug: bool = False
    interval: float | None = None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def result(self, text: str = "") -> None:
        """A line of the command's result (stdout)."""
        print(text, file=self.out)

    def note(self, text: str) -> None:
        """A progress note on stderr (suppressed by ``--quiet``)."""
        if not self.quiet:
            print(f"annscale: {text}", file=self.err, flush=True)

    def counter(self, total: int | None, label: str, unit: str = "") -> LineProgress:
        """A progress counter over ``total`` units (a bar, or log lines off a terminal)."""
        return LineProgress(
            total, label, unit=unit, enabled=not self.quiet, out=self.err, interval=self.interval
        )

    @contextmanager
    def counting(self, total: int | None, label: str, unit: str = "") -> Iterator[LineProgress]:
        bar = self.counter(total, label, unit)
        try:
            yield bar
        finally:
            bar.close()

    def tasks(self, label: str) -> AbstractContextManager[Any]:
        """Progress over the tasks of the local dask computations run inside the block."""
        if self.quiet:
            return nullcontext()
        return TaskProgress(label, enabled=True, out=self.err, interval=self.interval)


def show_warnings_briefly(console: Console) -> None:
    """Print warnings as ``annscale: warning: <message>`` (with file and line under --debug).

    ``--quiet`` hides them; each distinct message is shown once.
    """
    if console.debug:
        return
    if console.quiet:
        warnings.simplefilter("ignore")
        return

    def show(message, category, filename, lineno, file=None, line=None):
        text = _one_line(message) if isinstance(message, Warning) else str(message)
        print(f"annscale: warning: {text}", file=console.err)

    warnings.showwarning = show


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError) and text.startswith(("'", '"')) and text[0] == text[-1]:
        text = text[1:-1]  # KeyError repr-quotes its message
    first, *rest = text.splitlines()
    if rest:
        first += " " + " ".join(line.strip() for line in rest if line.strip())
    return first


def run_guarded(command: str, fn: Callable[[], int], console: Console) -> int:
    """Run ``fn`` and turn any exception into one line on stderr and an exit code."""
    prefix = f"annscale {command}" if command else "annscale"
    try:
        return fn()
    except ProblemsFound:
        return EXIT_PROBLEMS
    except BrokenPipeError:  # stdout closed early (``annscale info x | head``): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is quiet
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=console.err)
        return 130
    except UsageError as e:
        if console.debug:
            traceback.print_exc(file=console.err)
        print(f"{prefix}: error: {_one_line(e)}", file=console.err)
        return EXIT_USAGE
    except Exception as e:
        if console.debug:
            traceback.print_exc(file=console.err)
        ours = _is_ours(e)
        kind = "" if ours else f"{type(e).__name__}: "
        hint = "" if ours or console.debug else " (run with --debug for the traceback)"
        print(f"{prefix}: error: {kind}{_one_line(e)}{hint}", file=console.err)
        return EXIT_PROBLEMS


def _is_ours(error: BaseException) -> bool:
    from ..errors import AnnscaleError

    return isinstance(error, (AnnscaleError, FileNotFoundError, PermissionError))
