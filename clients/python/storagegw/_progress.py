"""A one-line transfer progress bar for the command line (stderr, TTY only)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressBar", "format_bytes", "format_duration"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_REDRAW_INTERVAL = 0.1  # seconds; redrawing per 1 MiB chunk would flicker
_LABEL_WIDTH = 30


def format_bytes(count: float) -> str:
    for unit in _UNITS:
        if abs(count) < 1024 or unit == _UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Redraws `label  42% [====>     ] 1.2 MiB / 3.0 MiB  4.5 MiB/s  ETA 0:03`.

    update() may be called from another thread (uploads report progress from
    gRPC's sending thread), hence the lock.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Keep the end of long keys: it is the part that tells files apart.
        self.label = label if len(label) <= _LABEL_WIDTH else "..." + label[3 - _LABEL_WIDTH :]
        self.total = total
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._last_draw = float("-inf")
        self._done = 0
        self._lock = threading.Lock()
        self._finished = False

    def update(self, done: int) -> None:
        with self._lock:
            self._done = done
            now = self._clock()
            if self._finished or now - self._last_draw < _REDRAW_INTERVAL:
                return
            self._last_draw = now
            self._draw(now)

    def finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()

    def render(self, now: float, width: int) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = self._done / elapsed
        # Fixed widths keep the bar from jittering as the numbers change.
        amount = f"{format_bytes(self._done):>10}"
        if self.total is not None:
            amount += f" / {format_bytes(self.total)}"
        parts = [amount, f"{format_bytes(rate):>10}/s"]
        if self.total:
            fraction = min(self._done / self.total, 1.0)
            if rate > 0 and fraction < 1:
                parts.append(f"ETA {format_duration((self.total - self._done) / rate)}")
            else:
                parts.append(format_duration(elapsed))
            head = f"{self.label}  {fraction * 100:5.1f}% "
            tail = "  " + "  ".join(parts)
            bar_width = width - len(head) - len(tail) - 2
            if bar_width >= 10:
                filled = int(bar_width * fraction)
                arrow = ">" if filled < bar_width else ""
                bar = "=" * filled + arrow + " " * (bar_width - filled - len(arrow))
                return f"{head}[{bar}]{tail}"
            return (head + tail)[:width]
        parts.append(format_duration(elapsed))
        return f"{self.label}  {'  '.join(parts)}"[:width]

    def _draw(self, now: float) -> None:
        width = shutil.get_terminal_size((80, 20)).columns - 1
        line = self.render(now, width)
        # \r returns to the line start; padding wipes a longer previous line.
        self._stream.write("\r" + line.ljust(width))
        self._stream.flush()
