"""A one-line transfer progress bar for the command line (stderr, TTY only)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressBar", "format_bytes", "format_duration"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_REDRAW_INTERVAL = 0.1  # seconds; redrawing per 1 MiB chunk would flicker
_LABEL_WIDTH = 30
_NARROW_LABEL_WIDTH = 16
_MIN_BAR_WIDTH = 10
_DEFAULT_COLUMNS = 80


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
    """Redraws `label  42.0% [====>     ] 1.2 MiB / 3.0 MiB  4.5 MiB/s  ETA 0:03`.

    The line always fits the terminal: on a narrow one the label shortens and
    whole fields drop out (the rate, then the bar, then the ETA), never half of
    one. update() may be called from another thread (uploads report progress
    from gRPC's sending thread), hence the lock.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = _shorten(label, _LABEL_WIDTH)
        self.total = total
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._last_draw = float("-inf")
        self._done = 0
        self._lock = threading.Lock()
        self._finished = False
        self._drawn = False

    def update(self, done: int) -> None:
        with self._lock:
            self._done = done
            now = self._clock()
            if self._finished or now - self._last_draw < _REDRAW_INTERVAL:
                return
            self._last_draw = now
            self._draw(now)

    def finish(self) -> None:
        """Draw the final state and end the line; no drawing after this."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()

    def stop(self) -> None:
        """Stop drawing at once (Ctrl-C, an error) and leave the cursor at the
        start of a fresh line, so that a message printed next stands alone."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._drawn:
                self._stream.write("\n")
                self._stream.flush()

    def render(self, now: float, width: int) -> str:
        """The line for a terminal `width` columns wide (at most `width` long)."""
        elapsed = max(now - self._start, 1e-9)
        rate = self._done / elapsed
        fraction = min(self._done / self.total, 1.0) if self.total else None
        if fraction is not None and rate > 0 and fraction < 1:
            assert self.total is not None
            timing = f"ETA {format_duration((self.total - self._done) / rate)}"
        else:
            timing = format_duration(elapsed)
        done = format_bytes(self._done)
        total = "" if self.total is None else f" / {format_bytes(self.total)}"
        speed = f"{format_bytes(rate)}/s"
        percent = "" if fraction is None else f"{fraction * 100:5.1f}%"
        # Fixed widths keep the numbers from jittering, where there is room.
        padded = [f"{done:>10}{total}", f"{speed:>12}", timing]
        short = _shorten(self.label, _NARROW_LABEL_WIDTH)
        layouts = [
            (self.label, padded, True),
            (short, padded, True),
            (short, [done + total, speed, timing], True),
            (short, [done + total, timing], True),
            (short, [done + total, timing], False),
            (short, [done + total], False),
            (short, [], False),
        ]
        for label, fields, with_bar in layouts:
            line = self._layout(label, percent, fields, fraction if with_bar else None, width)
            if line is not None:
                return line
        return (percent.strip() or done)[:width]

    @staticmethod
    def _layout(
        label: str, percent: str, fields: list[str], fraction: float | None, width: int
    ) -> str | None:
        head = f"{label}  {percent}".rstrip()
        tail = "  ".join(fields)
        if fraction is None:
            line = f"{head}  {tail}".rstrip()
            return line if len(line) <= width else None
        bar_width = width - len(head) - len(tail) - 5  # " [", "]  "
        if bar_width < _MIN_BAR_WIDTH:
            return None
        filled = int(bar_width * fraction)
        arrow = ">" if filled < bar_width else ""
        bar = "=" * filled + arrow + " " * (bar_width - filled - len(arrow))
        return f"{head} [{bar}]  {tail}"

    def _draw(self, now: float) -> None:
        # One column short of the terminal: writing the last column wraps on some.
        width = _columns(self._stream) - 1
        line = self.render(now, width)
        # \r returns to the line start; padding wipes a longer previous line.
        self._stream.write("\r" + line.ljust(width))
        self._stream.flush()
        self._drawn = True


def _shorten(label: str, width: int) -> str:
    """Keep the end of long keys: it is the part that tells files apart."""
    return label if len(label) <= width else "..." + label[3 - width :]


def _columns(stream: TextIO) -> int:
    """The width of the terminal the bar is drawn on: COLUMNS when set, else
    the stream's own terminal (stderr, when stdout is a pipe or a file)."""
    with contextlib.suppress(ValueError):
        if (columns := int(os.environ.get("COLUMNS", "0"))) > 0:
            return columns
    try:
        return os.get_terminal_size(stream.fileno()).columns or _DEFAULT_COLUMNS
    except (OSError, ValueError, AttributeError):
        return _DEFAULT_COLUMNS
