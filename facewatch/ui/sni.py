"""The tray icon as a StatusNotifierItem: what KDE, GNOME's AppIndicator extension, XFCE, Cinnamon and waybar host.

SniIcon offers the small part of pystray.Icon that facewatch.ui.tray uses (icon, title, update_menu, run, stop,
HAS_MENU), so the tray logic is the same over either backend.
1. The item owns org.kde.StatusNotifierItem-<pid>-<n> and serves ITEM_PATH; its menu is dbusmenu at
   dbusmenu.PATH, and ItemIsMenu asks hosts to open that menu on a left click too.
2. It registers with org.kde.StatusNotifierWatcher and again each time the watcher's owner changes (the panel
   restarted, or started after us); with no watcher it waits, silently, for one.
3. Registration runs in its own thread, never the dispatcher's: a watcher may call back (GetAll) before it replies.
4. The icon goes as IconPixmap: ARGB32 in network byte order, at several sizes so the host scales little.
5. A change is announced by NewIcon / NewTitle / NewToolTip; hosts then re-read the properties.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from typing import Any, Callable, Sequence

from jeepney import MatchRule, Message
from PIL import Image

from facewatch.ui import dbusmenu
from facewatch.ui.dbusservice import BusError, Interface, Method, Service

log = logging.getLogger(__name__)

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_INTERFACE = "org.kde.StatusNotifierItem"
ITEM_PATH = "/StatusNotifierItem"
PIXMAP_SIZES = (16, 22, 24, 32, 48, 64)  # what panels commonly draw (rule 4)
_serial = itertools.count(1)

Pixmaps = list[tuple[int, int, bytes]]


def argb_pixmaps(image: Image.Image, sizes: Sequence[int] = PIXMAP_SIZES) -> Pixmaps:
    """The image as IconPixmap entries (width, height, ARGB32 big-endian bytes), one per size."""
    rgba = image.convert("RGBA")
    pixmaps = []
    for size in sizes:
        scaled = rgba if rgba.size == (size, size) else rgba.resize((size, size), Image.Resampling.LANCZOS)
        red, green, blue, alpha = scaled.split()
        pixmaps.append((size, size, Image.merge("RGBA", (alpha, red, green, blue)).tobytes()))  # bytes A,R,G,B
    return pixmaps


def watcher_present(service: Service) -> bool:
    """Whether a StatusNotifierWatcher (a tray host's registry) is on the bus now."""
    return bool(service.call_bus("NameHasOwner", WATCHER)[0])


class SniIcon:
    """A StatusNotifierItem with a dbusmenu menu over a Service; stands in for pystray.Icon (see module doc)."""

    HAS_MENU = True

    def __init__(self, service: Service, name: str, image: Image.Image, title: str,
                 entries: Sequence[Any]) -> None:
        self.service = service
        self.name = name
        self.visible = False  # what pystray's setup hook sets; the item shows once registered anyway
        self.bus_name = f"org.kde.StatusNotifierItem-{os.getpid()}-{next(_serial)}"
        self.menu = dbusmenu.DBusMenu(entries)
        self._pixmaps = argb_pixmaps(image)
        self._title = title
        self._stopped = threading.Event()
        self._announce_menu: Callable[[], bool] | None = None

    # ------------------------------------------------------------------------------------------ pystray surface

    @property
    def icon(self) -> Pixmaps:
        """The current icon as IconPixmap entries."""
        return self._pixmaps

    @icon.setter
    def icon(self, image: Image.Image) -> None:
        self._pixmaps = argb_pixmaps(image)
        self._emit("NewIcon")

    @property
    def title(self) -> str:
        """The tooltip text (also the item's Title)."""
        return self._title

    @title.setter
    def title(self, text: str) -> None:
        self._title = text
        self._emit("NewTitle")
        self._emit("NewToolTip")

    def update_menu(self) -> None:
        """Tell the host the menu's labels or enabled states changed (only when they did)."""
        if self._announce_menu is not None:
            self._announce_menu()

    def run(self, setup: Callable[[Any], None] | None = None) -> None:
        """Publish the item, register it (rule 2), call setup(self), and serve until stop()."""
        try:
            self._publish()
            if setup is not None:
                setup(self)
            self._stopped.wait()
        except BusError as exc:  # the bus refused our name or went away while we set up
            log.error("cannot show the tray icon: %s", exc)
        finally:
            self.service.close()

    def stop(self) -> None:
        """End run(); safe from any thread."""
        self._stopped.set()

    # ------------------------------------------------------------------------------------------ D-Bus side

    def _publish(self) -> None:
        self._announce_menu = dbusmenu.publish(self.menu, self.service)
        self.service.export(ITEM_PATH, [self._item_interface()])
        self.service.call_bus("RequestName", self.bus_name, 4)  # 4: DO_NOT_QUEUE; the name is ours alone
        rule = MatchRule(type="signal", sender="org.freedesktop.DBus", interface="org.freedesktop.DBus",
                         member="NameOwnerChanged", path="/org/freedesktop/DBus")
        rule.add_arg_condition(0, WATCHER)
        self.service.subscribe(rule, self._watcher_changed)
        self._register_soon()

    def _item_interface(self) -> Interface:
        def nothing(*_args: Any) -> tuple:  # the host opens the menu itself (ItemIsMenu); clicks need no answer
            return ()

        return Interface(
            ITEM_INTERFACE,
            methods={"Activate": Method("ii", "", nothing), "SecondaryActivate": Method("ii", "", nothing),
                     "ContextMenu": Method("ii", "", nothing), "Scroll": Method("is", "", nothing)},
            properties={
                "Category": ("s", lambda: "ApplicationStatus"),
                "Id": ("s", lambda: self.name),
                "Title": ("s", lambda: self._title),
                "Status": ("s", lambda: "Active"),
                "WindowId": ("i", lambda: 0),
                "IconName": ("s", lambda: ""),
                "IconThemePath": ("s", lambda: ""),
                "IconPixmap": ("a(iiay)", lambda: self._pixmaps),
                "OverlayIconName": ("s", lambda: ""),
                "OverlayIconPixmap": ("a(iiay)", list),
                "AttentionIconName": ("s", lambda: ""),
                "AttentionIconPixmap": ("a(iiay)", list),
                "AttentionMovieName": ("s", lambda: ""),
                "ToolTip": ("(sa(iiay)ss)", lambda: ("", [], self.name, self._title)),
                "ItemIsMenu": ("b", lambda: True),
                "Menu": ("o", lambda: dbusmenu.PATH),
            },
            signals={"NewTitle": "", "NewIcon": "", "NewAttentionIcon": "", "NewOverlayIcon": "",
                     "NewToolTip": "", "NewStatus": "s"},
        )

    def _emit(self, member: str) -> None:
        if self._announce_menu is not None:  # published: someone may be listening
            self.service.emit(ITEM_PATH, ITEM_INTERFACE, member)

    def _watcher_changed(self, message: Message) -> None:
        _name, _old, new = message.body
        if new:
            log.info("a tray host appeared; showing the icon there")
            self._register_soon()
        else:
            log.warning("the tray host went away; the icon comes back when a panel with a tray starts again")

    def _register_soon(self) -> None:
        threading.Thread(target=self._register, name="facewatch-sni-register", daemon=True).start()  # rule 3

    def _register(self) -> None:
        try:
            if not watcher_present(self.service):
                return
            self.service.call(WATCHER, WATCHER_PATH, WATCHER, "RegisterStatusNotifierItem", "s", (self.bus_name,))
        except BusError as exc:  # the watcher vanished between the check and the call, or refused us
            log.warning("could not register the tray icon with the tray host: %s", exc)
