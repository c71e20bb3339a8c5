"""Stopping a meta-training run cleanly on SIGTERM / SIGINT, at the next meta-step boundary."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopOnSignal:
    """SIGTERM / SIGINT (from the main thread) ask the loop to stop at the next meta-step boundary, so a
    killed job still writes its checkpoint and best bundle. A second SIGINT (Ctrl-C twice) gets the
    default behaviour; further SIGTERMs are ignored, because supervisors and session ends often send
    SIGTERM more than once (to the process and to its group) and then SIGKILL after a grace period:
    escalating on a repeat would lose the checkpoint that the first one asked for."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signal = signum
        if signum == signal.SIGINT:
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
