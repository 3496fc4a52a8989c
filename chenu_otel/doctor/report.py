"""How the doctor prints: one line per check with its mark, hints under failures, a summary.

Marks are ✔ ✘ ! ○ on a terminal that can print them and ``ok``/``FAIL``/``warn``/``skip``
otherwise (stdout piped with an ASCII or Latin-1 encoding), so the output never breaks on
encoding.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TextIO

__all__ = ["CheckResult", "Reporter", "Status", "exit_status"]


class Status(enum.Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


_MARKS: Final = {
    Status.PASS: ("✔", "ok  "),
    Status.FAIL: ("✘", "FAIL"),
    Status.WARN: ("!", "warn"),
    Status.SKIP: ("○", "skip"),
}


@dataclass(frozen=True)
class CheckResult:
    """One check: what it looked at, what came out, and for a failure what to change."""

    name: str
    status: Status
    detail: str = ""
    hint: str = ""


def exit_status(results: Sequence[CheckResult]) -> int:
    """0 when no check failed, 1 otherwise (warnings and skipped checks do not fail)."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def can_print(stream: TextIO, text: str) -> bool:
    """True when `stream`'s encoding can encode `text`."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Reporter:
    """Writes sections, checks and the summary to `stream` as they happen."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.unicode = can_print(stream, "".join(mark for mark, _ in _MARKS.values()) + "→…")
        self.results: list[CheckResult] = []

    def text(self, line: str = "") -> None:
        """Print `line`, replacing what the stream cannot encode."""
        if not self.unicode:
            line = line.replace("→", "->").replace("…", "...")
            encoding = getattr(self.stream, "encoding", None) or "ascii"
            line = line.encode(encoding, errors="replace").decode(encoding)
        self.stream.write(line + "\n")
        self.stream.flush()

    def section(self, title: str) -> None:
        self.text()
        self.text(title)

    def mark(self, status: Status) -> str:
        unicode_mark, ascii_mark = _MARKS[status]
        return unicode_mark if self.unicode else ascii_mark

    def check(self, result: CheckResult) -> CheckResult:
        """Record `result` and print its line (and its hint on the next one)."""
        self.results.append(result)
        line = f"  {self.mark(result.status)} {result.name}"
        self.text(f"{line}: {result.detail}" if result.detail else line)
        if result.hint:
            self.text(f"      hint: {result.hint}")
        return result

    def summary(self) -> int:
        """Print the counts and return the exit status."""
        counts = {status: 0 for status in Status}
        for result in self.results:
            counts[result.status] += 1
        code = exit_status(self.results)
        parts = [f"{counts[Status.PASS]} passed", f"{counts[Status.FAIL]} failed"]
        if counts[Status.WARN]:
            parts.append(
                f"{counts[Status.WARN]} warning" + ("s" if counts[Status.WARN] > 1 else "")
            )
        if counts[Status.SKIP]:
            parts.append(f"{counts[Status.SKIP]} skipped")
        verdict = "nothing failed" if code == 0 else "see the hints above"
        self.section(f"Summary: {', '.join(parts)}: {verdict} (exit {code})")
        return code
