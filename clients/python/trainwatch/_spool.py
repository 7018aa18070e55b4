"""The spool: rows (epochs and steps) that could not be delivered yet, oldest first, in a JSON-lines file.

Only the sender thread touches it. Lines are appended whole (one write per batch of lines, each ending in a newline)
and read back from a byte offset, so delivery resumes exactly where the last acknowledged batch ended. The file is
removed once everything in it is delivered; a file left by a process that died is adopted by the next run of the
same operation (`trainwatch.init(resume=...)`), a torn last line dropped. When the file cannot be written (a read-only
or full disk) the lines are held in memory instead: the run goes on, and only a crash loses them.
"""

from __future__ import annotations

import collections
import os
from typing import Callable, Deque, List, Optional, Tuple


class Spool:
    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0  # bytes of the file already delivered
        self._lines_in_file = 0  # lines not yet delivered in the file
        self._memory: Deque[str] = collections.deque()
        self._file_ok = True
        self.write_error: Optional[str] = None

    def adopt(self) -> int:
        """Takes over a file a previous process left at `path`; returns how many rows it holds."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1
        if end < len(data):  # the last write was torn by a crash: that line was never whole
            with open(self.path, "r+b") as f:
                f.truncate(end)
        self._lines_in_file = data[:end].count(b"\n")
        return self._lines_in_file

    def __len__(self) -> int:
        return self._lines_in_file + len(self._memory)

    def append(self, lines: List[str]) -> None:
        if not lines:
            return
        if self._file_ok and not self._memory:
            try:
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
                with open(self.path, "ab") as f:
                    f.write(("\n".join(lines) + "\n").encode())
                self._lines_in_file += len(lines)
                return
            except OSError as e:
                self._file_ok = False
                self.write_error = f"{type(e).__name__}: {e}"
        self._memory.extend(lines)

    def read(self, n: int, kind: Optional[Callable[[str], str]] = None) -> Tuple[List[str], int]:
        """Up to n of the oldest lines, and the token that `advance` takes once they are delivered. With `kind`, only
        the lines of the first line's kind (one request's worth: epochs, or steps)."""
        lines: List[str] = []
        nbytes = 0
        first = None
        if self._lines_in_file:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                while len(lines) < n:
                    raw = f.readline()
                    if not raw:
                        break
                    line = raw[:-1].decode()
                    if kind is not None:
                        k = kind(line)
                        if first is None:
                            first = k
                        elif k != first:
                            break
                    nbytes += len(raw)
                    lines.append(line)
            return lines, nbytes
        for line in self._memory:
            if len(lines) >= n or (kind is not None and lines and kind(line) != kind(lines[0])):
                break
            lines.append(line)
        return lines, -len(lines)

    def advance(self, token: int, count: int) -> None:
        if token >= 0:
            self._offset += token
            self._lines_in_file -= count
            if self._lines_in_file == 0:
                self._remove_file()
        else:
            for _ in range(-token):
                self._memory.popleft()

    def clear(self) -> int:
        n = len(self)
        self._memory.clear()
        self._lines_in_file = 0
        self._remove_file()
        return n

    def _remove_file(self) -> None:
        self._offset = 0
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
