"""A tray host played by the test: a StatusNotifierWatcher stand-in, and a client that reads and clicks an item's
menu over D-Bus with the same library facewatch serves it with."""

from __future__ import annotations

from typing import Any

from jeepney import HeaderFields, MatchRule

from facewatch.ui import dbusmenu
from facewatch.ui.dbusservice import Interface, Method, connect_session_bus
from facewatch.ui.sni import ITEM_INTERFACE, ITEM_PATH, WATCHER, WATCHER_PATH


class Watcher:
    """A StatusNotifierWatcher stand-in on its own connection: records the items that register."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.service = connect_session_bus()
        self.service.export(WATCHER_PATH, [Interface(
            WATCHER,
            methods={"RegisterStatusNotifierItem": Method("s", "", self._register),
                     "RegisterStatusNotifierHost": Method("s", "", lambda _name: ())},
            properties={"RegisteredStatusNotifierItems": ("as", lambda: list(self.items)),
                        "IsStatusNotifierHostRegistered": ("b", lambda: True),
                        "ProtocolVersion": ("i", lambda: 0)},
        )])
        assert self.service.call_bus("RequestName", WATCHER, 4) == (1,)  # 1: we are the primary owner

    def _register(self, name: str) -> tuple:
        self.items.append(name)
        return ()

    def close(self) -> None:
        self.service.close()


class Host:
    """The test's side of the bus: calls the item and its menu, and records the signals they emit."""

    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name
        self.client = connect_session_bus()
        self.signals: list[tuple[str, tuple]] = []
        for interface in (ITEM_INTERFACE, dbusmenu.INTERFACE):
            self.client.subscribe(MatchRule(type="signal", interface=interface),
                                  lambda m: self.signals.append((m.header.fields[HeaderFields.member], m.body)))

    def props(self) -> dict[str, Any]:
        """The item's properties, values unwrapped."""
        (props,) = self.client.call(self.bus_name, ITEM_PATH, "org.freedesktop.DBus.Properties", "GetAll", "s",
                                    (ITEM_INTERFACE,))
        return {name: value for name, (_sig, value) in props.items()}

    def menu(self, member: str, sig: str | None = None, *args: Any) -> tuple:
        """Call a com.canonical.dbusmenu method of the item's menu."""
        return self.client.call(self.bus_name, dbusmenu.PATH, dbusmenu.INTERFACE, member, sig, args)

    def labels(self) -> list[tuple[int, str, bool]]:
        """(id, label, enabled) of every standard item in the layout; separators as (id, "-", False)."""
        _revision, (_root, _props, children) = self.menu("GetLayout", "iias", 0, -1, [])
        rows = []
        for _sig, (item_id, props, _kids) in children:
            if props.get("type", ("s", "standard"))[1] == "separator":
                rows.append((item_id, "-", False))
            else:
                rows.append((item_id, props["label"][1], props["enabled"][1]))
        return rows

    def click(self, label: str) -> None:
        """Send Event(id, "clicked") for the item with this label."""
        item_id = next(i for i, text, _ in self.labels() if text == label)
        self.menu("Event", "isvu", item_id, "clicked", ("i", 0), 0)

    def close(self) -> None:
        self.client.close()
