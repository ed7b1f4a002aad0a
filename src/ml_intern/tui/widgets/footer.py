"""Footer that re-mounts its keys only when the keys change, and does not accumulate watchers."""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

# What a footer shows for one binding, apart from whether it is enabled.
KeySignature = tuple[str, str, str, str, object]


class LeanFooter(Footer):
    """Textual's Footer, updated in place when only the enabled state of its keys changes.

    The screen refreshes its bindings whenever a turn starts or ends (to dim Interrupt, Undo, ...) and on every
    focus change. Textual's Footer answers each refresh by re-mounting all its keys, which costs a full-screen
    layout while the user types. Here a refresh that keeps the same keys only toggles their `-disabled` class.

    Each recompose also binds new keys to `Footer.compact`; the old keys' watchers are only dropped when `compact`
    changes, which it never does here, so they are pruned after every recompose.
    """

    def __init__(self) -> None:
        super().__init__()
        self._shown_keys: tuple[KeySignature, ...] | None = None

    def _current_keys(self) -> tuple[tuple[KeySignature, ...], dict[tuple[str, str], bool]]:
        """Return what compose would show now, and whether each (key, action) is enabled."""
        active_bindings = self.screen.active_bindings
        keys: list[KeySignature] = []
        enabled_by_key: dict[tuple[str, str], bool] = {}
        for _, binding, enabled, tooltip in active_bindings.values():
            if binding.show or binding.key == self.app.COMMAND_PALETTE_BINDING:
                keys.append((binding.key, binding.action, binding.description, tooltip, binding.group))
                enabled_by_key[(binding.key, binding.action)] = enabled
        return tuple(keys), enabled_by_key

    async def recompose(self) -> None:
        if not self._bindings_ready or not self.is_attached:
            await super().recompose()
            return
        keys, enabled_by_key = self._current_keys()
        if keys == self._shown_keys:
            for footer_key in self.query(FooterKey):
                enabled = enabled_by_key.get((footer_key.key, footer_key.action), True)
                footer_key._disabled = not enabled
                footer_key.set_class(not enabled, "-disabled")
            return
        await super().recompose()
        self._shown_keys = keys
        watchers: dict[str, list[tuple[object, object]]] = getattr(self, "__watchers", {})
        for entries in watchers.values():
            entries[:] = [(node, callback) for node, callback in entries if not getattr(node, "_closing", False)
                          and getattr(node, "is_attached", True)]
