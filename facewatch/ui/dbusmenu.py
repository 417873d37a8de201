"""The tray menu as com.canonical.dbusmenu: the protocol StatusNotifierItem hosts use to show an app's menu.

The host asks for the layout (GetLayout), shows it itself, and sends back Event(id, "clicked"). Here:
1. Item ids are the entry's position + 1; 0 is the root. The entries never change, only their labels and
   enabled states, so an id always means the same action.
2. Labels and enabled states are read when the host asks. refresh() compares them with what was last
   served and, on a change, bumps the layout revision so the caller can emit LayoutUpdated.
3. A click on a disabled or unknown item does nothing: the host may show a stale menu.
4. "_" marks a mnemonic in dbusmenu labels, so a literal underscore (reference_faces, a person's name) is
   doubled.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Protocol, Sequence

from facewatch.ui.dbusservice import Interface, Method, Service

INTERFACE = "com.canonical.dbusmenu"
PATH = "/MenuBar"
ROOT = 0
LAYOUT_SIG = "(ia{sv}av)"


class Entry(Protocol):
    """What the menu needs of one entry (facewatch.ui.tray.MenuEntry has it)."""

    @property
    def label(self) -> str: ...

    action: Callable[[], Any] | None
    enabled: Callable[[], bool]


class DBusMenu:
    """The menu model served over dbusmenu: layout, item properties, clicks, and a revision that counts changes."""

    def __init__(self, entries: Sequence[Entry | None]) -> None:
        self.entries = list(entries)  # None is a separator
        self.revision = 1
        self._lock = threading.Lock()
        self._served = self._current()  # the items' properties as of the current revision (rule 2)

    def item_properties(self, item_id: int) -> dict[str, tuple[str, Any]]:
        """One item's dbusmenu properties (a{sv} values as (signature, value))."""
        if item_id == ROOT:
            return {"children-display": ("s", "submenu")}
        entry = self.entries[item_id - 1]
        if entry is None:
            return {"type": ("s", "separator")}
        return {"label": ("s", entry.label.replace("_", "__")),  # rule 4
                "enabled": ("b", bool(entry.enabled())), "visible": ("b", True)}

    def refresh(self) -> bool:
        """Re-read labels and enabled states; True (and a new revision) when they changed since last served."""
        with self._lock:
            current = self._current()
            if current == self._served:
                return False
            self.revision += 1
            self._served = current
            return True

    def _current(self) -> list[dict]:
        return [self.item_properties(i) for i in self.ids()]

    def ids(self) -> range:
        """Every item id, the root included."""
        return range(len(self.entries) + 1)

    def layout(self, parent: int, depth: int, names: Sequence[str]) -> tuple[int, tuple]:
        """GetLayout: (revision, (id, properties, children)) from `parent` down `depth` levels (-1: all)."""
        self.refresh()
        if parent not in self.ids():
            raise LookupError(f"no menu item {parent}")

        def node(item_id: int, levels: int) -> tuple:
            children = []
            if item_id == ROOT and levels != 0:
                children = [(LAYOUT_SIG, node(i, levels - 1)) for i in self.ids() if i != ROOT]
            return item_id, _only(self.item_properties(item_id), names), children

        return self.revision, node(parent, depth)

    def group_properties(self, ids: Sequence[int], names: Sequence[str]) -> list[tuple]:
        """GetGroupProperties: [(id, properties)] for the known ids among `ids` (all items when empty)."""
        wanted = [i for i in (ids or self.ids()) if i in self.ids()]
        return [(i, _only(self.item_properties(i), names)) for i in wanted]

    def click(self, item_id: int) -> bool:
        """Run the item's action when it is an enabled entry; True when it ran (rule 3)."""
        if item_id == ROOT or item_id not in self.ids():
            return False
        entry = self.entries[item_id - 1]
        if entry is None or entry.action is None or not entry.enabled():
            return False
        entry.action()
        return True


def _only(props: dict, names: Sequence[str]) -> dict:
    """The properties restricted to `names` (all when names is empty, as the protocol says)."""
    return {k: v for k, v in props.items() if not names or k in names}


Emit = Callable[[str, str, tuple], None]  # emit(member, signature, body) sends one of the menu's signals


def announce(menu: DBusMenu, emit: Emit) -> bool:
    """Refresh the menu and emit LayoutUpdated when it changed; True when it did."""
    changed = menu.refresh()
    if changed:
        emit("LayoutUpdated", "ui", (menu.revision, ROOT))
    return changed


def menu_interface(menu: DBusMenu, emit: Emit) -> Interface:
    """The com.canonical.dbusmenu interface over a DBusMenu."""
    def event(item_id: int, event_id: str, _data: Any, _timestamp: int) -> tuple:
        if event_id == "clicked" and menu.click(item_id):
            announce(menu, emit)  # a click usually changes what is enabled (pause <-> resume)
        return ()

    def event_group(events: list) -> tuple:
        for item_id, event_id, data, timestamp in events:
            event(item_id, event_id, data, timestamp)
        return ([e[0] for e in events if e[0] not in menu.ids()],)

    def about_to_show(_item_id: int) -> tuple:
        return (announce(menu, emit),)

    def property_of(item_id: int, name: str) -> tuple:
        props = menu.item_properties(item_id) if item_id in menu.ids() else {}
        if name not in props:
            raise LookupError(f"menu item {item_id} has no property {name}")
        return (props[name],)

    return Interface(
        INTERFACE,
        methods={
            "GetLayout": Method("iias", "u" + LAYOUT_SIG, lambda p, d, n: menu.layout(p, d, n)),
            "GetGroupProperties": Method("aias", "a(ia{sv})", lambda ids, n: (menu.group_properties(ids, n),)),
            "GetProperty": Method("is", "v", property_of),
            "Event": Method("isvu", "", event),
            "EventGroup": Method("a(isvu)", "ai", event_group),
            "AboutToShow": Method("i", "b", about_to_show),
            "AboutToShowGroup": Method("ai", "aiai", lambda ids: (
                [i for i in ids if i in menu.ids()] if about_to_show(ROOT)[0] else [],
                [i for i in ids if i not in menu.ids()])),
        },
        properties={
            "Version": ("u", lambda: 3),
            "TextDirection": ("s", lambda: "ltr"),
            "Status": ("s", lambda: "normal"),
            "IconThemePath": ("as", list),
        },
        signals={"ItemsPropertiesUpdated": "a(ia{sv})a(ias)", "LayoutUpdated": "ui", "ItemActivationRequested": "iu"},
    )


def publish(menu: DBusMenu, service: Service) -> Callable[[], bool]:
    """Export the menu at PATH on a Service; returns the function that announces a changed menu."""
    def emit(member: str, sig: str, body: tuple) -> None:
        service.emit(PATH, INTERFACE, member, sig, body)

    service.export(PATH, [menu_interface(menu, emit)])
    return lambda: announce(menu, emit)
