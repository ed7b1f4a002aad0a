"""Footer that does not accumulate watchers of its discarded keys."""

from __future__ import annotations

from textual.widgets import Footer


class LeanFooter(Footer):
    """Textual's Footer, pruning its reactive watchers after each recompose.

    Each recompose binds new keys to `Footer.compact`; the old keys' watchers are only dropped when `compact`
    changes, which it never does here, so every binding refresh (two per turn) would leak a footer's worth of keys.
    """

    async def recompose(self) -> None:
        await super().recompose()
        watchers: dict[str, list[tuple[object, object]]] = getattr(self, "__watchers", {})
        for entries in watchers.values():
            entries[:] = [(node, callback) for node, callback in entries if not getattr(node, "_closing", False)
                          and getattr(node, "is_attached", True)]
