"""What every energy and power-state source shares: a sysfs reader rooted anywhere, and the result shapes.

Every source reads through a `Sysfs`, whose root is `/` on a real machine and a directory a test wrote
(a fake `/sys` tree) in the tests. Its opener is injectable too: the tests run as root, and root reads a
`chmod 000` file anyway, so a permission failure is simulated by an opener that raises `PermissionError`
exactly as `open()` does for an ordinary user on a root-only counter.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Callable

# The methods an energy reading can carry. `none` is an answer: nothing on this node could be read.
METHODS = ("rapl-package", "rapl-psys", "battery", "none")

# Diagnosis statuses, worst last (the same words `lqbench doctor` prints).
OK, WARN, FAIL = "ok", "warn", "fail"


class Sysfs:
    """Small text files under `root`: `/sys/...` paths are resolved below it."""

    def __init__(self, root: str | os.PathLike = "/", opener: Callable | None = None):
        self.root = os.fspath(root)
        self._open = opener or open

    def path(self, abs_path: str) -> str:
        return os.path.join(self.root, abs_path.lstrip("/"))

    def glob(self, pattern: str) -> list[str]:
        """Absolute paths below the root that match `pattern` (given as an absolute path), sorted."""
        return sorted(glob.glob(self.path(pattern)))

    @staticmethod
    def glob_in(directory: str, pattern: str) -> list[str]:
        """Entries of a directory `glob` already returned (its path is rooted) that match `pattern`, sorted."""
        return sorted(glob.glob(os.path.join(directory, pattern)))

    def read(self, path: str) -> str:
        """The stripped text of a file found by `glob` (or built by `path`); raises OSError as open() does."""
        with self._open(path, "r") as f:
            return f.read().strip()

    def read_int(self, path: str) -> int:
        return int(self.read(path))

    def read_or_none(self, path: str) -> str | None:
        """The text, or None when the file is missing, unreadable or not text."""
        try:
            return self.read(path)
        except (OSError, ValueError):
            return None

    def int_or_none(self, path: str) -> int | None:
        text = self.read_or_none(path)
        try:
            return int(text) if text is not None else None
        except ValueError:
            return None

    @property
    def is_real(self) -> bool:
        """Reading the machine itself (not a test tree): only then may psutil fill gaps."""
        return os.path.abspath(self.root) == "/" and self._open is open


@dataclass
class Energy:
    """Joules used between two reads of one node's counters, and how they were measured.

    `joules` is None whenever `method` is `none`: there is no estimate behind it. `domains` holds every
    counter that could be read over the window (package-0, psys, dram, battery ...), in joules, so a
    package reading can be compared with the whole-platform one where both exist.
    """

    joules: float | None
    method: str
    seconds: float
    domains: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def watts(self) -> float | None:
        return self.joules / self.seconds if self.joules is not None and self.seconds > 0 else None
