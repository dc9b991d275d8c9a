"""Cooperative cancellation shared by the decode loop, the candidate loop and subprocesses."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Cancelled(Exception):
    """Raised by `CancelToken.raise_if_cancelled` once the token was cancelled."""


class CancelToken:
    """A thread-safe flag with callbacks: cheap to check between decoded tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        """Set the flag once and run every registered callback (errors in them are ignored)."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a failing callback must not stop the others
                pass

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` on cancel (at once if already cancelled). Returns an unregister function."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)

                def unregister() -> None:
                    with self._lock:
                        if callback in self._callbacks:
                            self._callbacks.remove(callback)

                return unregister
        callback()
        return lambda: None

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or `timeout` seconds passed; True when cancelled."""
        return self._event.wait(timeout)

    def child(self) -> CancelToken:
        """A token cancelled whenever this one is (but cancellable on its own too)."""
        token = CancelToken()
        self.on_cancel(lambda: token.cancel(self.reason))
        return token


NEVER = None  # spelled-out default: functions take `cancel: CancelToken | None = None`
