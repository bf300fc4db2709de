"""Ctrl-C and SIGTERM during `lqbench run`: a request to stop, answered at a safe point.

Python's own SIGINT handling raises KeyboardInterrupt at whatever bytecode the main
thread happens to be running. During a run that is often inside Ray: measured on
Ray 2.60, `ray.shutdown()` spends seconds in `subprocess.wait` on the raylet and GCS,
and a Ctrl-C landing there skipped the rest of the cleanup (the run stayed `running`,
the resume hint was never printed) while typer turned the KeyboardInterrupt into a
silent exit 130. Ray also takes SIGTERM: `ray.init` sets Python handlers that
`sys.exit`, its C++ core sets a crash handler while the driver connects and the
default action when it shuts down (measured with strace).

`StopSignals` replaces both handlers for the duration of a run, in two modes:

- "raise" (before Ray starts and before anything is recorded): the signal raises
  `Interrupted` at once, so a long quantization stops without waiting; nothing is lost.
- "defer" (from Ray's start to the end of the run): the first signal only records
  itself (`requested`); the run polls it, stops scheduling, records what it has, marks
  the run interrupted and says so in one line. A second signal writes `last_words()`
  (unless empty: the outcome was already printed) as one line to the stderr seen at
  install time, even if fd 2 is redirected at that moment, and exits at once.

Exit status is 128 + the first signal's number: 130 for SIGINT, 143 for SIGTERM.
What this cannot cover: a SIGTERM in the last fraction of a second of `ray.init`
(Ray's C++ crash handler prints a stack and the process ends by SIGTERM; nothing is
recorded yet) or while Ray shuts down (the default action; the run calls this last,
after recording and printing its outcome).
Signal handlers can only be set from the main thread; elsewhere (a run started in a
thread) this does nothing and `requested` stays False.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    """The shell's convention for "stopped by this signal"."""
    return 128 + int(signum)


class Interrupted(KeyboardInterrupt):
    """A stop signal in "raise" mode (a KeyboardInterrupt, so no `except Exception` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    def __init__(self, last_words: Callable[[], str] = lambda: "interrupted"):
        self.signum: int | None = None
        self.mode = "raise"
        self.last_words = last_words
        self._previous: dict[int, object] = {}
        self._stderr_fd: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def install(self) -> None:
        """Install our handler; call again to take the signals back from code that replaced
        them: ray.init sets Python SIGTERM handlers, and Ray's C++ core sets SIGTERM at the C
        level (a failure handler on start, the default action on shutdown) without Python's
        `signal` module knowing, so this always sets them again. `restore` puts back what was
        there before the first call."""
        if threading.current_thread() is not threading.main_thread():
            return
        if self._stderr_fd is None:
            self._stderr_fd = os.dup(2)
        for sig in STOP_SIGNALS:
            if sig not in self._previous:
                current = signal.getsignal(sig)
                if sig == signal.SIGINT and current == signal.SIG_IGN:
                    continue  # started in the background by a shell, which asked us to ignore Ctrl-C
                self._previous[sig] = current
            signal.signal(sig, self._handle)

    def defer(self) -> None:
        """From now on the first signal only asks the run to stop."""
        self.mode = "defer"

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._stderr_fd is not None:
            os.close(self._stderr_fd)
            self._stderr_fd = None

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            if self.mode == "raise":
                raise Interrupted(signum)
            return
        self._exit_now()

    def _exit_now(self) -> None:
        """Second signal: one line, then out, without waiting for anything (Ray's processes
        were started with a parent-death signal and go with us)."""
        try:
            line = self.last_words()
        except Exception:  # the line must never stop the exit
            line = "interrupted"
        if line:  # empty: the outcome was already printed
            fd = self._stderr_fd if self._stderr_fd is not None else 2
            try:
                os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8", errors="replace"))
            except OSError:
                pass
        os._exit(exit_status(self.signum))
