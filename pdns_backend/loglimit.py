"""Rate-limited logging: one line per distinct problem per interval, with a count.

A backend that logs every failed request turns a Redis outage or a misbehaving client
into a flood of identical lines (thousands per second) that hides everything else and
can fill a disk. Each problem has a key (e.g. "store unavailable"); the first occurrence
in an interval is logged at once, the rest are counted and reported with the next line
for that key, or by `flush()` once the interval is over.
"""

from __future__ import annotations

import logging
import threading
import time


class LogLimiter:
    def __init__(self, logger: logging.Logger, interval: float = 10.0, clock=time.monotonic):
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        # key -> [window start, suppressed count, level, last message]
        self._windows: dict[str, list] = {}

    def log(self, key: str, level: int, message: str, exc_info=None):
        """Log `message` unless `key` was already logged in this interval (then count it)."""
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window[0] < self.interval:
                window[1] += 1
                window[2], window[3] = level, message
                return
            suppressed = window[1] if window is not None else 0
            self._windows[key] = [now, 0, level, message]
        self._emit(level, message, suppressed, exc_info)

    def flush(self):
        """Report the counts of intervals that are over (called from a periodic tick)."""
        now = self.clock()
        due = []
        with self._lock:
            for key, window in list(self._windows.items()):
                if now - window[0] >= self.interval:
                    if window[1]:
                        due.append((window[2], window[3], window[1]))
                    del self._windows[key]
        for level, message, count in due:
            self.logger.log(level, "%s (%d more like this in the last %.0f s)", message, count, self.interval)

    def _emit(self, level: int, message: str, suppressed: int, exc_info):
        if suppressed:
            self.logger.log(level, "%s (and %d more like this in the previous %.0f s)", message, suppressed,
                            self.interval, exc_info=exc_info)
        else:
            self.logger.log(level, "%s", message, exc_info=exc_info)
