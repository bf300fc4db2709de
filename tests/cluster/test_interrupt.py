"""`cluster.interrupt.StopSignals` with real signals, each case in a child Python process
(the second signal ends the process, which must not be pytest's)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import os, signal, sys, threading, time
from cluster.interrupt import Interrupted, StopSignals

def deliver(sig):
    os.kill(os.getpid(), sig)
    for _ in range(200):  # let the handler run: Python runs it between bytecodes
        time.sleep(0.005)
"""


def _child(body: str, **popen) -> subprocess.CompletedProcess:
    code = PRELUDE + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, **popen)


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_first_signal_asks_second_exits_with_one_line(sig, status):
    proc = _child(f"""
        stop = StopSignals(last_words=lambda: "interrupted: run r1 kept 3 of 9 samples")
        stop.install()
        stop.defer()
        deliver({int(sig)})
        print("asked", stop.requested, stop.signum, flush=True)
        deliver({int(sig)})
        print("still running", flush=True)
    """)
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == f"asked True {int(sig)}\n"
    assert proc.stderr == "interrupted: run r1 kept 3 of 9 samples\n"


def test_second_signal_writes_to_the_real_stderr_while_fd2_is_redirected(tmp_path):
    sink = tmp_path / "sink.txt"
    proc = _child(f"""
        stop = StopSignals(last_words=lambda: "the one line")
        stop.install()
        stop.defer()
        deliver(signal.SIGINT)
        with open({str(sink)!r}, "w") as f:
            os.dup2(f.fileno(), 2)  # as a quantizer's captured stderr does
            deliver(signal.SIGINT)
    """)
    assert proc.returncode == 130
    assert proc.stderr == "the one line\n"
    assert sink.read_text() == ""


def test_second_signal_after_the_outcome_was_printed_adds_nothing():
    proc = _child("""
        stop = StopSignals(last_words=lambda: "")
        stop.install()
        stop.defer()
        deliver(signal.SIGINT)
        deliver(signal.SIGINT)
        print("still running")
    """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_raise_mode_raises_interrupted(sig):
    proc = _child(f"""
        stop = StopSignals()
        stop.install()
        try:
            deliver({int(sig)})
            print("not raised")
        except Interrupted as exc:
            print("raised", exc.signum, isinstance(exc, KeyboardInterrupt), stop.requested)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"raised {int(sig)} True True\n"


def test_takes_signals_back_and_restores_what_was_there_first():
    """ray.init replaces the SIGTERM handler; install() again takes it back; restore() puts back
    the handlers from before the first install, not the intruder's."""
    proc = _child("""
        def mine(signum, frame):
            print("original handler", signum)
        signal.signal(signal.SIGTERM, mine)
        stop = StopSignals()
        stop.install()
        stop.defer()
        signal.signal(signal.SIGTERM, lambda s, f: print("intruder"))
        stop.install()
        deliver(signal.SIGTERM)
        print("requested", stop.requested)
        stop.restore()
        print("SIGINT back to Python's:", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        deliver(signal.SIGTERM)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["requested True", "SIGINT back to Python's: True", "original handler 15"]


def test_an_ignored_sigint_stays_ignored():
    """A shell starts background jobs with SIGINT ignored; a run started so keeps ignoring
    Ctrl-C (meant for the foreground job) but still stops on SIGTERM."""
    proc = _child("""
        stop = StopSignals()
        stop.install()
        stop.defer()
        deliver(signal.SIGINT)
        print("after SIGINT", stop.requested)
        deliver(signal.SIGTERM)
        print("after SIGTERM", stop.signum)
        stop.restore()
        print("restored", signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
    """, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["after SIGINT False", "after SIGTERM 15", "restored True"]


def test_outside_the_main_thread_it_changes_nothing():
    proc = _child("""
        stop = StopSignals()
        t = threading.Thread(target=stop.install)
        t.start(); t.join()
        print(signal.getsignal(signal.SIGINT) is signal.default_int_handler,
              signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
        stop.restore()
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True True\n"


def test_install_again_after_a_c_level_reset():
    """Ray's C++ core sets SIGTERM to the default action when it shuts down, behind Python's
    `signal` module (which still reports our handler): install() sets it again regardless."""
    proc = _child("""
        import ctypes
        stop = StopSignals()
        stop.install()
        stop.defer()
        ctypes.CDLL(None).signal(signal.SIGTERM, ctypes.c_void_p(0))  # SIG_DFL, as ray.shutdown() leaves it
        stop.install()
        deliver(signal.SIGTERM)
        print("requested", stop.signum)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "requested 15\n"
