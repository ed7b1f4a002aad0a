"""Full garbage collections at quiet moments, so their pauses do not land on typing or streaming."""

from __future__ import annotations

import gc
import time

from textual.timer import Timer
from textual.widget import Widget

# A full collection walks every tracked object: with a long transcript mounted that is a few hundred thousand
# objects and 150-300 ms on a small machine, long enough to drop keys and freeze a stream. Python starts one
# whenever enough objects have survived two young collections, which in a busy session is every few turns.
# While the TUI runs, full collections are started here instead: when nobody has typed and no text has streamed
# for a moment, or, if the session never goes quiet, once enough young collections have piled up.
GEN2_THRESHOLD_DISABLED = 1_000_000


class QuietCollector:
    """Runs the oldest-generation collection when the UI is quiet (one per process, started by the transcript)."""

    QUIET_S = 1.0
    """How long after the last keypress or streamed text a collection may run."""
    SOFT_LIMIT = 10
    """Young (generation 1) collections since the last full one before a quiet moment is used (Python's own)."""
    HARD_LIMIT = 400
    """Collect even if it is never quiet once this many have piled up (bounds the garbage kept alive)."""
    CHECK_INTERVAL_S = 0.25

    def __init__(self) -> None:
        self.last_activity = 0.0
        self.collections = 0
        self.longest_pause_s = 0.0
        self._saved_threshold: tuple[int, int, int] | None = None
        self._timer: Timer | None = None

    @property
    def active(self) -> bool:
        """Whether full collections are paced here (between `start` and `stop`)."""
        return self._timer is not None

    def start(self, owner: Widget) -> None:
        """Take over full collections, checking on a timer that lives as long as `owner`."""
        if self._timer is not None:
            return
        self._saved_threshold = gc.get_threshold()
        young, middle, _ = self._saved_threshold
        gc.set_threshold(young, middle, GEN2_THRESHOLD_DISABLED)
        self.last_activity = time.monotonic()
        self._timer = owner.set_interval(self.CHECK_INTERVAL_S, self.check, name="quiet-gc")

    def stop(self) -> None:
        """Give full collections back to Python."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._saved_threshold is not None:
            gc.set_threshold(*self._saved_threshold)
            self._saved_threshold = None

    def note_activity(self) -> None:
        """Record that the user typed or text streamed (postpones a quiet collection)."""
        self.last_activity = time.monotonic()

    def check(self) -> None:
        """Collect if enough has piled up and the UI is quiet, or if far too much has."""
        pending = gc.get_count()[2]
        if pending >= self.HARD_LIMIT or (
            pending >= self.SOFT_LIMIT and time.monotonic() - self.last_activity >= self.QUIET_S
        ):
            started = time.perf_counter()
            gc.collect()
            self.collections += 1
            self.longest_pause_s = max(self.longest_pause_s, time.perf_counter() - started)


quiet_gc = QuietCollector()
