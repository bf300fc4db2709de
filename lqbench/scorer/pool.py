"""A pool of scorer worker processes: parallel, killable, and safe to use from threads.

Each worker is a fresh Python interpreter (fork + exec, i.e. the `spawn` start method's
semantics) running `worker.main`: it reads programs from its stdin, scores each one in its
own sandboxed world (`sandbox.LuaSandbox`) and writes the verdict back. The pool never forks
its own (possibly threaded, e.g. a Ray actor's) process without exec.

Workers are started with `subprocess` rather than `multiprocessing`: a multiprocessing
spawn/forkserver child re-imports the parent's `__main__` (inside Ray that is Ray's worker
script, a second of imports per worker) and inherits the parent's `sys.path`. Ours run
`python -I -S -c ...` (no PYTHON* variables, no site) with the directories that hold
the `lqbench` and `lupa` packages put first on their path, so they start in a few tens of ms
and do not depend on how the parent's sys.path was arranged.

Limits: the pool kills the worker when a program has run `timeout_s` (+ KILL_GRACE_S) of wall
time, and the sandbox stops it at `timeout_s` of CPU time with an instruction hook (which never
fires in a C-level loop, e.g. a pathological pattern match or a finalizer); a killed worker is
replaced at once, and programs queued behind a slow one move to other workers. Memory: lupa's
`max_memory` caps the Lua state, an address-space rlimit in the worker is the backstop.

Frames on the pipes: see `worker.py`.
"""

from __future__ import annotations

import collections
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterable, Iterator

from lqbench.scorer.sandbox import ScoreLimits, Verdict, trim_error
from lqbench.scorer.worker import HEADER as _HEADER
from lqbench.scorer.worker import READY as _READY
from lqbench.scorer.worker import WORKER_BOOTSTRAP, decode_reply, encode_limits, write_all

# Wall-clock slack on top of the limit before the worker is killed: the kill is what usually
# ends a runaway (as the reference harness kills `lua` at the limit); the CPU-time hook inside
# the worker stops it first only when the machine is idle enough.
KILL_GRACE_S = 0.05
# How long a new worker may take to import lupa and get ready.
STARTUP_TIMEOUT_S = 60.0
# Programs sent ahead to a busy worker, so it never waits for this process (which may be
# descheduled on a loaded machine), and how many bytes may wait in its pipe (below the
# kernel's 64 KiB pipe buffer, so that sending never blocks the dispatcher). Deep enough that
# a worker does not run dry while the dispatcher naps BATCH_WAIT_S (a 1 ms sleep takes ~2 ms
# on a small VM, and a program ~0.2 ms): with depth 8, 2,982 programs took 0.78 s, with 32
# 0.64 s (2 workers, same machine, same run).
PIPELINE_DEPTH = 32
PIPELINE_MAX_BYTES = 48 << 10
# When every worker has at least this many programs queued, the dispatcher waits BATCH_WAIT_S
# before reading answers, to take several at once.
BATCH_WHEN_QUEUED = 4
BATCH_WAIT_S = 0.001
# A program running longer than this gives the programs queued behind it to other workers.
STEAL_AFTER_S = 0.05
# How many programs score_many keeps queued ahead of the one it waits for, per worker.
LOOKAHEAD_PER_JOB = 1024

class ScorerError(RuntimeError):
    """The scorer pool itself failed (a worker could not start)."""


# ----------------------------------------------------------------- parent side


def _worker_paths() -> list[str]:
    """Where a worker finds lqbench and lupa: wherever this process found them."""
    import importlib.util

    import lqbench

    paths = [os.path.dirname(os.path.dirname(os.path.abspath(lqbench.__file__)))]
    spec = importlib.util.find_spec("lupa")
    if spec is not None and spec.origin:
        lupa_root = os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))
        if lupa_root not in paths:
            paths.append(lupa_root)
    return paths


# glibc malloc settings for the workers, each measured in one process, side by side:
# - fast bins off (mxfast=0): fast bins defer merging freed chunks until a later large
#   allocation, so after a program that recursed until Lua's stack overflowed (500k
#   CallInfos freed with its state) the next Lua state took 13-18 ms instead of 0.3 ms;
#   time outside the programs fell from ~35 to ~8 us per program (2,982 programs);
# - keep up to 64 MiB of freed heap (trim_threshold, top_pad 32 MiB) instead of handing it
#   back to the kernel and faulting it in again: the programs' own time fell from 0.86 s
#   to 0.70 s (2,982 programs; deep recursions grow 16 MiB stacks). A worker may hold that
#   much after a memory-hungry program;
# - transparent huge pages for the heap (hugetlb=1: madvise, where the kernel's THP mode is
#   "madvise") and blocks below 16 MiB from the heap rather than fresh mmaps (setting the
#   other values turns glibc's adaptive mmap threshold off, leaving it at 128 KiB): a
#   stack overflow touches ~50 MB. 48 runs of the 12 slowest programs of 4,884: 1.03 s ->
#   0.91 s; the other 4,872: 0.333 s -> 0.319 s (best of 5, 2 workers).
# Other allocators (macOS) ignore the variable; older glibcs ignore tunables they lack.
_MALLOC_TUNABLES = {"glibc.malloc.mxfast": "0", "glibc.malloc.trim_threshold": str(64 << 20),
                    "glibc.malloc.top_pad": str(32 << 20), "glibc.malloc.hugetlb": "1",
                    "glibc.malloc.mmap_threshold": str(16 << 20)}


def _worker_environment() -> dict:
    env = dict(os.environ)
    kept = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t and t.split("=")[0] not in _MALLOC_TUNABLES]
    env["GLIBC_TUNABLES"] = ":".join(kept + [f"{k}={v}" for k, v in _MALLOC_TUNABLES.items()])
    return env


class _Worker:
    """One worker process and the parent's end of its pipes."""

    def __init__(self, limits: ScoreLimits) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", WORKER_BOOTSTRAP,
             encode_limits(limits),
             *_worker_paths()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            close_fds=True,
            start_new_session=True,  # Ctrl-C in a terminal goes to the parent only
            bufsize=0,
            env=_worker_environment(),
        )
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.buffer = bytearray()
        self.ready = False
        self.started = time.monotonic()
        self.jobs: collections.deque = collections.deque()  # sent, not answered; the first is running
        self.jobs_bytes = 0  # the programs of `jobs`, in bytes
        self.job_started = 0.0  # when the first of `jobs` started running

    def send(self, job, program: bytes) -> None:
        if not self.jobs:
            self.job_started = time.monotonic()
        self.jobs.append(job)
        self.jobs_bytes += len(program)
        write_all(self.wfd, _HEADER.pack(len(program)) + program)

    def answered(self):
        """The running job got its verdict; the next queued one starts now."""
        job = self.jobs.popleft()
        self.jobs_bytes -= len(job.program)
        self.job_started = time.monotonic()
        return job

    def waiting_bytes(self) -> int:
        """Bytes of the programs queued behind the running one (they sit in the pipe)."""
        return self.jobs_bytes - len(self.jobs[0].program) if self.jobs else 0

    def read_available(self) -> bool:
        """Pull what the pipe holds into the buffer; False at end of file (the worker died)."""
        try:
            chunk = os.read(self.rfd, 1 << 16)
        except OSError:
            return False
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def next_frame(self) -> bytes | None:
        if len(self.buffer) < _HEADER.size:
            return None
        size = _HEADER.unpack_from(self.buffer)[0]
        if len(self.buffer) < _HEADER.size + size:
            return None
        frame = bytes(self.buffer[_HEADER.size:_HEADER.size + size])
        del self.buffer[:_HEADER.size + size]
        return frame

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self._reap()

    def close_input(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def stop(self) -> None:
        """Ask the worker to exit (end of its input), kill it if it does not."""
        self.close_input()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


class _Job:
    """One program on its way through the pool.

    A job may sit in two workers' pipes at once: when the program ahead of it runs long, a
    copy is handed to another worker (see `_steal`), and the first answer wins.
    """

    __slots__ = ("program", "verdict", "failure", "cancelled", "in_flight", "queued")

    def __init__(self, program: bytes) -> None:
        self.program = program
        self.verdict: Verdict | None = None
        self.failure: BaseException | None = None
        self.cancelled = False
        self.in_flight = 0    # copies sent to workers and not yet answered or lost
        self.queued = False   # waiting in the pool's queue

    @property
    def open(self) -> bool:
        return self.verdict is None and self.failure is None and not self.cancelled


class ScorerPool:
    """Scores Lua programs in parallel worker processes.

    >>> with ScorerPool(jobs=2) as pool:
    ...     verdict = pool.score(program)
    ...     verdicts = list(pool.score_many(programs))   # input order

    One dispatcher thread owns the workers; `score` and `score_many` only queue programs
    and wait for their verdicts, so any number of threads may call them at once.
    """

    def __init__(self, jobs: int | None = None, limits: ScoreLimits = ScoreLimits()) -> None:
        self.limits = limits
        self.jobs = max(1, int(jobs or os.cpu_count() or 1))
        self._queue: collections.deque[_Job] = collections.deque()
        self._cv = threading.Condition()
        self._closed = False
        self._fatal: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._workers: list[_Worker] = [_Worker(limits) for _ in range(self.jobs)]
        self.replaced = 0  # workers killed or lost and started anew (for tests and reports)
        self._thread = threading.Thread(target=self._dispatch_loop, name="lqbench-scorer", daemon=True)
        self._thread.start()

    # -- public API

    def score(self, program: str | bytes) -> Verdict:
        """Score one program (blocks until its verdict)."""
        return self._result(self._submit(program))

    def score_many(self, programs: Iterable[str | bytes]) -> Iterator[Verdict]:
        """Verdicts for `programs`, in input order, computed in parallel over the workers."""
        window = self.jobs * LOOKAHEAD_PER_JOB
        pending: collections.deque[_Job] = collections.deque()
        source = iter(programs)
        exhausted = False
        try:
            while True:
                if not exhausted and len(pending) < window // 2:
                    batch = []
                    while len(pending) + len(batch) < window:
                        try:
                            batch.append(next(source))
                        except StopIteration:
                            exhausted = True
                            break
                    pending.extend(self._submit_many(batch))
                if not pending:
                    return
                yield self._result(pending.popleft())
        finally:
            for job in pending:  # an abandoned run: what has not started is dropped
                job.cancelled = True

    def close(self) -> None:
        """Stop the workers; programs still queued fail with ScorerError."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "ScorerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- callers' side

    def _submit(self, program: str | bytes) -> _Job:
        return self._submit_many([program])[0]

    def _submit_many(self, programs: list) -> list[_Job]:
        jobs = [_Job(p.encode("utf-8", "surrogatepass") if isinstance(p, str) else p) for p in programs]
        if not jobs:
            return jobs
        with self._cv:
            if self._fatal is not None:
                raise self._fatal
            if self._closed:
                raise ScorerError("scorer pool is closed")
            was_empty = not self._queue
            for job in jobs:
                job.queued = True
            self._queue.extend(jobs)
        if was_empty:  # otherwise the dispatcher already has work and wakes on every answer
            self._wake()
        return jobs

    def _result(self, job: _Job) -> Verdict:
        with self._cv:
            while job.verdict is None and job.failure is None:
                self._cv.wait()
        if job.failure is not None:
            raise job.failure
        return job.verdict

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (OSError, ValueError):
            pass

    # -- the dispatcher thread

    def _finish(self, job: _Job, verdict: Verdict) -> None:
        self._finish_all([(job, verdict)])

    def _finish_all(self, results: list) -> None:
        if not results:
            return
        with self._cv:
            for job, verdict in results:
                if job.verdict is None and job.failure is None:
                    job.verdict = verdict
            self._cv.notify_all()

    def _peek_program(self) -> bytes:
        with self._cv:
            for job in self._queue:
                if job.open:
                    return job.program
        return b""

    def _next_job(self) -> _Job | None:
        with self._cv:
            while self._queue:
                job = self._queue.popleft()
                job.queued = False
                if job.open:
                    return job
        return None

    def _requeue(self, jobs) -> None:
        """Put jobs back at the front of the queue, unless answered, running elsewhere or queued."""
        with self._cv:
            for job in reversed(list(jobs)):
                if job.open and job.in_flight == 0 and not job.queued:
                    job.queued = True
                    self._queue.appendleft(job)

    def _dispatch_loop(self) -> None:
        try:
            while not self._closed:
                self._assign()
                self._poll_once()
        except BaseException as exc:  # a broken pool must not leave callers waiting forever
            fatal = exc if isinstance(exc, ScorerError) else ScorerError(f"scorer pool failed: {exc!r}")
            with self._cv:
                self._fatal = fatal
        finally:
            for worker in self._workers:  # all of them see end of input at once...
                worker.close_input()
            for worker in self._workers:  # ...then each gets a moment to exit
                worker.stop()
            with self._cv:
                failure = self._fatal or ScorerError("scorer pool is closed")
                self._closed = True
                stranded = [job for worker in self._workers for job in worker.jobs] + list(self._queue)
                for job in stranded:
                    if job.verdict is None:
                        job.failure = failure
                self._queue.clear()
                self._cv.notify_all()

    def _assign(self) -> None:
        # Each worker gets up to PIPELINE_DEPTH programs, so it never idles for the round
        # trip; a queued program's clock starts only when the one before it is answered.
        for depth in range(1, PIPELINE_DEPTH + 1):
            for i, worker in enumerate(self._workers):
                if not worker.ready or len(worker.jobs) >= depth:
                    continue
                if worker.jobs and (time.monotonic() - worker.job_started > STEAL_AFTER_S
                                    or worker.waiting_bytes() + len(self._peek_program()) > PIPELINE_MAX_BYTES):
                    continue  # don't queue behind a slow program, nor more than the pipe holds
                job = self._next_job()
                if job is None:
                    return
                if job in worker.jobs:  # a stolen copy never goes back to the worker holding it
                    self._requeue_after_skip(job)
                    continue
                job.in_flight += 1
                try:
                    worker.send(job, job.program)
                except OSError:  # it died: its programs go back to the queue, a new one starts
                    self._workers[i] = self._lose(worker)

    def _requeue_after_skip(self, job: _Job) -> None:
        with self._cv:
            job.queued = True
            self._queue.appendleft(job)

    def _lose(self, worker: _Worker) -> _Worker:
        """Forget a dead or killed worker's unanswered jobs (requeued) and start a new worker."""
        worker.kill()
        for job in worker.jobs:
            job.in_flight -= 1
        self._requeue(worker.jobs)
        worker.jobs.clear()
        self.replaced += 1
        return _Worker(self.limits)

    def _steal(self, now: float) -> None:
        """Programs queued behind one that runs long go to workers with nothing to do."""
        idle = sum(1 for w in self._workers if w.ready and not w.jobs)
        if not idle:
            return
        for worker in self._workers:
            if len(worker.jobs) > 1 and now - worker.job_started > STEAL_AFTER_S:
                with self._cv:
                    for job in list(worker.jobs)[1:]:
                        if job.open and job.in_flight == 1 and not job.queued:
                            job.queued = True
                            self._queue.appendleft(job)

    def _poll_once(self) -> None:
        now = time.monotonic()
        hard_limit = self.limits.timeout_s + KILL_GRACE_S
        wake_at = now + 3600.0
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        by_fd = {}
        for worker in self._workers:
            if worker.jobs:
                wake_at = min(wake_at, worker.job_started + hard_limit)
                steal_at = worker.job_started + STEAL_AFTER_S
                if len(worker.jobs) > 1 and steal_at > now:  # once past it, any event re-checks
                    wake_at = min(wake_at, steal_at)
            elif not worker.ready:
                wake_at = min(wake_at, worker.started + STARTUP_TIMEOUT_S)
            else:
                continue
            poller.register(worker.rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
            by_fd[worker.rfd] = worker
        events = poller.poll(max(0.0, wake_at - now) * 1000.0)
        if events and all(len(w.jobs) >= BATCH_WHEN_QUEUED for w in self._workers if w.ready):
            # every worker still has work queued: let a few more answers pile up and take
            # them in one go (fewer wake-ups of this thread and of the callers)
            time.sleep(BATCH_WAIT_S)
        lost: set[_Worker] = set()
        for fd, _ in events:
            if fd == self._wake_r:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except OSError:
                    pass
                continue
            worker = by_fd[fd]
            if not worker.read_available():
                lost.add(worker)
                continue
            self._take_frames(worker, lost)
        now = time.monotonic()
        for i, worker in enumerate(self._workers):
            overran = bool(worker.jobs) and now - worker.job_started >= hard_limit
            slow_start = not worker.ready and now - worker.started >= STARTUP_TIMEOUT_S
            if not (worker in lost or overran or slow_start):
                continue
            if not worker.ready:
                worker.kill()
                raise ScorerError(f"scorer worker failed to start: {worker.stderr_tail() or 'no output'}")
            if worker.jobs:
                job = worker.jobs.popleft()
                job.in_flight -= 1
                ms = (now - worker.job_started) * 1000.0
                if overran:
                    worker.kill()
                    verdict = Verdict("timeout", False, f"timeout: over {self.limits.timeout_s:g} s of wall time", ms)
                else:
                    verdict = self._crash_verdict(worker, ms)
                if job.in_flight == 0:  # no other copy can still answer
                    self._finish(job, verdict)
            self._workers[i] = self._lose(worker)
        self._steal(now)

    def _take_frames(self, worker: _Worker, lost: set) -> None:
        results = []
        try:
            self._read_frames(worker, lost, results)
        finally:
            self._finish_all(results)  # one wake-up for the waiting callers per batch

    def _read_frames(self, worker: _Worker, lost: set, results: list) -> None:
        while True:
            frame = worker.next_frame()
            if frame is None:
                return
            if not worker.ready:
                if frame != _READY:
                    lost.add(worker)
                    return
                worker.ready = True
                continue
            if not worker.jobs:  # a reply nobody asked for: the worker is confused
                lost.add(worker)
                return
            try:
                verdict = Verdict(*decode_reply(frame))
            except ValueError:  # not a reply: the worker is confused
                lost.add(worker)
                return
            job = worker.answered()
            job.in_flight -= 1
            results.append((job, verdict))

    @staticmethod
    def _crash_verdict(worker: _Worker, ms: float) -> Verdict:
        """A worker died under a program without a verdict: say how."""
        try:
            code = worker.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        if code == -9:  # the kernel's OOM killer (the pool itself kills only on timeouts)
            return Verdict("memory_limit", False, "memory limit exceeded (worker killed)", ms)
        tail = worker.stderr_tail().splitlines()
        detail = tail[-1] if tail else f"exit status {code}"
        return Verdict("runtime_error", False, trim_error(f"scorer worker died: {detail}"), ms)


# ----------------------------------------------------------------- one-off scoring

_shared_pools: dict[ScoreLimits, ScorerPool] = {}
_shared_lock = threading.Lock()


def shared_pool(limits: ScoreLimits) -> ScorerPool:
    """A process-wide one-worker pool per limits, for `lqbench.scorer.score`."""
    with _shared_lock:
        pool = _shared_pools.get(limits)
        if pool is None or pool._closed:
            pool = _shared_pools[limits] = ScorerPool(jobs=1, limits=limits)
        return pool


def _close_shared_pools() -> None:
    for pool in list(_shared_pools.values()):
        pool.close()


import atexit  # noqa: E402  (registered once the pool machinery exists)

atexit.register(_close_shared_pools)
