"""Garbage collection paced for the TUI: full collections at quiet moments, Python's own made rare."""

from __future__ import annotations

import gc
import time

from textual.timer import Timer
from textual.widget import Widget


class QuietCollector:
    """Runs full collections at quiet moments, and makes Python's own rare while the TUI runs.

    A full collection walks every tracked object: with a long transcript mounted that is a few hundred thousand
    objects and 150-300 ms on a small machine, long enough to drop keys and freeze a stream. With Python's default
    thresholds one starts every few turns of a busy session, because rendering caches survive the small young
    generation and pile up in the old one. While the TUI runs the youngest generation is made larger, so that most
    of them die young, and the old generation is collected whenever nobody has typed and no text has streamed for
    a moment. Python still starts a full collection by itself in a session that never pauses.
    """

    YOUNG_THRESHOLDS = (5_000, 10)
    """Generation 0 and 1 thresholds while the TUI runs (Python's are 700 and 10; a larger generation 1 pauses long)."""
    QUIET_S = 1.0
    """How long after the last keypress or streamed text a collection may run."""
    MIN_PENDING = 1
    """Young (generation 1) collections since the last full one before a quiet moment is used."""
    CHECK_INTERVAL_S = 0.25

    def __init__(self) -> None:
        self.last_activity = 0.0
        self.last_keypress = 0.0
        self.collections = 0
        self.longest_pause_s = 0.0
        self.collecting = False
        self._saved_thresholds = gc.get_threshold()
        self._timer: Timer | None = None

    @property
    def active(self) -> bool:
        """Whether quiet moments are being watched (between `start` and `stop`)."""
        return self._timer is not None

    def start(self, owner: Widget) -> None:
        """Start checking on a timer that lives as long as `owner`."""
        if self._timer is None:
            self._saved_thresholds = gc.get_threshold()
            gc.set_threshold(*self.YOUNG_THRESHOLDS, self._saved_thresholds[2])
            self.last_activity = time.monotonic()
            self._timer = owner.set_interval(self.CHECK_INTERVAL_S, self.check, name="quiet-gc")

    def stop(self) -> None:
        """Stop checking."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
            gc.set_threshold(*self._saved_thresholds)

    def note_activity(self) -> None:
        """Record that the user typed or text streamed (postpones a quiet collection)."""
        self.last_activity = time.monotonic()

    def note_keypress(self) -> None:
        """Record a keypress: it counts as activity, and streaming briefly yields to its paint."""
        self.last_keypress = self.last_activity = time.monotonic()

    def check(self) -> None:
        """Collect if the UI is quiet and enough has piled up since the last full collection."""
        if time.monotonic() - self.last_activity >= self.QUIET_S and gc.get_count()[2] >= self.MIN_PENDING:
            started = time.perf_counter()
            self.collecting = True
            try:
                gc.collect()
            finally:
                self.collecting = False
            self.collections += 1
            self.longest_pause_s = max(self.longest_pause_s, time.perf_counter() - started)


quiet_gc = QuietCollector()
