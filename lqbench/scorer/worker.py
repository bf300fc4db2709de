"""The scorer worker process: reads programs on a pipe, scores each in the sandbox, answers.

Started by `pool._Worker` as a fresh interpreter, `python -I -S -c WORKER_BOOTSTRAP LIMITS
PATH...`: isolated from the environment and without `site` (its ~30 ms of imports buy
nothing here), with the directories holding lqbench and lupa put first on its path. It
imports only this module, the sandbox and lupa (not even json or re: every module here is
on the critical path of every `lqbench score`), so it is ready in about 25 ms.

Frames on both pipes: 4-byte big-endian length + payload. Towards the worker the payload
is a program's bytes; back, `READY` once, then one reply per program, in the order received:
the verdict's index in VERDICTS (1 byte), flags (1 byte: 1 passed, 2 has an error message),
ms (8-byte double), then the error message in UTF-8.
"""

from __future__ import annotations

import os
import struct

from lqbench.verdicts import VERDICTS

HEADER = struct.Struct(">I")
READY = b"ready"
REPLY = struct.Struct(">BBd")
_PASSED, _HAS_ERROR = 1, 2

WORKER_BOOTSTRAP = (
    "import sys; sys.path[:0] = sys.argv[2:]; "
    "from lqbench.scorer.worker import main; main(sys.argv[1])"
)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def cap_address_space(memory_mb: int) -> None:
    """Backstop for the Lua allocator's cap (and the only cap under LuaJIT)."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + (memory_mb + 256) * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, OSError, ValueError):
        pass  # not Linux: the Lua allocator's cap still applies


def encode_limits(limits) -> str:
    """ScoreLimits as the worker's one command-line argument."""
    return f"{limits.timeout_s!r},{int(limits.memory_mb)},{limits.lua},{int(bool(limits.fresh_state))}"


def decode_limits(text: str):
    from lqbench.scorer.sandbox import ScoreLimits

    timeout_s, memory_mb, lua, fresh_state = text.split(",")
    return ScoreLimits(timeout_s=float(timeout_s), memory_mb=int(memory_mb), lua=lua, fresh_state=fresh_state == "1")


def encode_reply(status: str, passed: bool, error: str | None, ms: float) -> bytes:
    flags = (_PASSED if passed else 0) | (_HAS_ERROR if error is not None else 0)
    message = error.encode("utf-8", "surrogatepass") if error is not None else b""
    return REPLY.pack(VERDICTS.index(status), flags, ms) + message


def decode_reply(frame: bytes) -> tuple[str, bool, str | None, float]:
    """(status, passed, error, ms) from a worker's reply; ValueError if it is not one."""
    try:
        index, flags, ms = REPLY.unpack_from(frame)
        status = VERDICTS[index]
    except (struct.error, IndexError) as exc:
        raise ValueError(f"not a scorer reply: {bytes(frame[:16])!r}") from exc
    error = frame[REPLY.size:].decode("utf-8", "surrogatepass") if flags & _HAS_ERROR else None
    return status, bool(flags & _PASSED), error, ms


def frames(fd: int):
    """The payloads arriving on `fd`, until it closes; reads as much as the pipe holds at once."""
    buffer = bytearray()
    size = HEADER.size
    while True:
        while len(buffer) >= size:
            length = HEADER.unpack_from(buffer)[0]
            if len(buffer) < size + length:
                break
            payload = bytes(buffer[size:size + length])
            del buffer[:size + length]
            yield payload
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        buffer += chunk


def main(limits_arg: str) -> None:
    """Entry point of a worker process: score programs from stdin until it closes."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    # The protocol gets private descriptors; fd 0/1 become /dev/null so that nothing
    # written to stdout by native code can corrupt a frame.
    inp, out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)

    from lqbench.scorer.sandbox import LuaSandbox

    limits = decode_limits(limits_arg)
    sandbox = LuaSandbox(limits)
    cap_address_space(limits.memory_mb)
    write_all(out, HEADER.pack(len(READY)) + READY)
    pack = HEADER.pack
    for program in frames(inp):
        try:
            verdict = sandbox.run(program)
            payload = encode_reply(verdict.status, verdict.passed, verdict.error, verdict.ms)
        except MemoryError:
            payload = encode_reply("memory_limit", False, "memory limit exceeded", 0.0)
        write_all(out, pack(len(payload)) + payload)
    # End of input: leave at once. Closing the Lua state or tearing the interpreter down
    # would only delay the pool's shutdown (the last program's finalizers already ran).
    os._exit(0)
