"""Peak resident memory of this process, per sample.

On Linux the kernel keeps a high-water mark (VmHWM) that can be reset by writing
"5" to /proc/self/clear_refs, which gives a true per-sample peak. Elsewhere we
fall back to the current RSS, sampled after the work (a lower bound of the peak).
"""

from __future__ import annotations

from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak() -> bool:
    """Start a new peak window; False where the OS cannot do that."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20
