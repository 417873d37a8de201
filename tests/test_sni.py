"""StatusNotifierItem + dbusmenu on a real private dbus-daemon: registration, layout, clicks, icon, re-registration.

The test plays the tray host: it owns org.kde.StatusNotifierWatcher with the same D-Bus library facewatch uses,
reads the item's properties and menu over the bus and clicks menu items with dbusmenu Event("clicked").
"""

from __future__ import annotations

import threading

import pytest
from helpers.desktop import XInput, need_program, start_session_bus, start_xfce_panel, start_xvfb, stop, wait_for
from helpers.sni_host import Host, Watcher
from PIL import Image

from facewatch.ui import dbusmenu
from facewatch.ui.dbusservice import (
    BusError,
    Interface,
    Method,
    connect_session_bus,
    introspection_xml,
    split_signature,
)
from facewatch.ui.sni import ITEM_INTERFACE, ITEM_PATH, WATCHER, WATCHER_PATH, SniIcon, argb_pixmaps, watcher_present
from facewatch.ui.tray import MenuEntry

GREEN, RED = (34, 160, 70, 255), (215, 38, 38, 255)


# ------------------------------------------------------------------------------------------- real bus


@pytest.fixture
def item(session_bus):
    """A running SniIcon (green) with a small menu whose actions are recorded, a test watcher, and a Host."""
    watcher = Watcher()
    done: list[str] = []
    paused = threading.Event()
    entries = [
        MenuEntry(lambda: "Paused" if paused.is_set() else "Watching: nobody_here", enabled=lambda: False),
        None,
        MenuEntry("Pause", paused.set, lambda: not paused.is_set()),
        MenuEntry("Resume", paused.clear, paused.is_set),
        None,
        MenuEntry("Quit", lambda: done.append("quit")),
    ]
    icon = SniIcon(connect_session_bus(), "facewatch", Image.new("RGBA", (64, 64), GREEN), "facewatch: Watching",
                   entries)
    thread = threading.Thread(target=icon.run, daemon=True)
    thread.start()
    wait_for(lambda: watcher.items, what="the item to register")
    host = Host(watcher.items[0])
    icon.watcher, icon.host, icon.done, icon.paused = watcher, host, done, paused
    yield icon
    icon.stop()
    thread.join(5)
    assert not thread.is_alive()
    host.close()
    watcher.close()


# ------------------------------------------------------------------------------------------- tests


def test_item_registers_with_its_own_name(item):
    assert item.watcher.items == [item.bus_name]
    assert item.bus_name.startswith("org.kde.StatusNotifierItem-")
    assert watcher_present(item.host.client)


def test_item_properties_as_a_host_reads_them(item):
    props = item.host.props()
    assert props["Id"] == "facewatch" and props["Title"] == "facewatch: Watching"
    assert props["Status"] == "Active" and props["Category"] == "ApplicationStatus"
    assert props["Menu"] == dbusmenu.PATH and props["ItemIsMenu"] is True
    assert props["ToolTip"] == ("", [], "facewatch", "facewatch: Watching")
    sizes = [(w, h) for w, h, _ in props["IconPixmap"]]
    assert sizes == [(16, 16), (22, 22), (24, 24), (32, 32), (48, 48), (64, 64)]
    width, height, data = props["IconPixmap"][-1]
    assert len(data) == width * height * 4
    assert tuple(data[:4]) == (255, 34, 160, 70)  # ARGB, big-endian: alpha first


def test_menu_layout_escapes_mnemonics_and_reads_enabled_states(item):
    (version,) = item.host.client.call(item.bus_name, dbusmenu.PATH, "org.freedesktop.DBus.Properties", "Get",
                                       "ss", (dbusmenu.INTERFACE, "Version"))
    assert version == ("u", 3)
    assert item.host.labels() == [(1, "Watching: nobody__here", False), (2, "-", False), (3, "Pause", True),
                                  (4, "Resume", False), (5, "-", False), (6, "Quit", True)]


def test_clicks_run_actions_and_announce_the_new_layout(item):
    (revision, _layout) = item.host.menu("GetLayout", "iias", 0, -1, [])
    item.host.click("Pause")
    assert item.paused.is_set()
    wait_for(lambda: ("LayoutUpdated", (revision + 1, 0)) in item.host.signals, what="LayoutUpdated")
    assert item.host.labels()[2:4] == [(3, "Pause", False), (4, "Resume", True)]
    item.host.click("Pause")  # disabled now: nothing happens
    item.host.click("Resume")
    assert not item.paused.is_set()
    item.host.click("Quit")
    assert item.done == ["quit"]


def test_group_properties_and_about_to_show(item):
    (groups,) = item.host.menu("GetGroupProperties", "aias", [3, 99], ["label"])
    assert groups == [(3, {"label": ("s", "Pause")})]
    assert item.host.menu("AboutToShow", "i", 0) == (False,)  # nothing changed since the layout was read
    item.paused.set()
    assert item.host.menu("AboutToShow", "i", 0) == (True,)
    assert item.host.menu("EventGroup", "a(isvu)", [(4, "clicked", ("i", 0), 0), (42, "clicked", ("i", 0), 0)]) \
        == ([42],)
    assert not item.paused.is_set()


def test_icon_and_title_changes_are_signalled(item):
    item.icon = Image.new("RGBA", (64, 64), RED)
    item.title = "facewatch: Unknown face"
    wait_for(lambda: {"NewIcon", "NewTitle", "NewToolTip"} <= {name for name, _ in item.host.signals},
             what="NewIcon, NewTitle and NewToolTip")
    props = item.host.props()
    assert tuple(props["IconPixmap"][0][2][:4]) == (255, 215, 38, 38)
    assert props["ToolTip"][3] == "facewatch: Unknown face"


def test_item_registers_again_when_a_new_host_appears(item, caplog):
    caplog.set_level("INFO", logger="facewatch.ui.sni")
    item.watcher.close()
    wait_for(lambda: not watcher_present(item.host.client), what="the watcher to leave")
    wait_for(lambda: "the tray host went away" in caplog.text, what="the host-gone line")
    second = Watcher()
    try:
        wait_for(lambda: second.items == [item.bus_name], what="the item to register with the new host")
        assert "a tray host appeared" in caplog.text
    finally:
        second.close()


def test_bad_calls_get_errors_not_crashes(item, caplog):
    with pytest.raises(BusError, match="UnknownMethod"):
        item.host.client.call(item.bus_name, ITEM_PATH, ITEM_INTERFACE, "Explode")
    with pytest.raises(BusError, match="UnknownObject"):
        item.host.client.call(item.bus_name, "/nowhere", ITEM_INTERFACE, "Activate", "ii", (0, 0))
    with pytest.raises(BusError, match="PropertyReadOnly"):
        item.host.client.call(item.bus_name, ITEM_PATH, "org.freedesktop.DBus.Properties", "Set", "ssv",
                              (ITEM_INTERFACE, "Title", ("s", "x")))
    with pytest.raises(BusError, match="no menu item 77"):
        item.host.menu("GetLayout", "iias", 77, -1, [])
    assert "LookupError" in caplog.text and "Traceback" not in caplog.text
    assert item.host.labels()[0][1] == "Watching: nobody__here"  # still serving


def test_introspection_lists_the_item_interface(item):
    (xml,) = item.host.client.call(item.bus_name, ITEM_PATH, "org.freedesktop.DBus.Introspectable", "Introspect")
    assert f'<interface name="{ITEM_INTERFACE}">' in xml and '<property name="IconPixmap" type="a(iiay)"' in xml
    (root,) = item.host.client.call(item.bus_name, "/", "org.freedesktop.DBus.Introspectable", "Introspect")
    assert '<node name="StatusNotifierItem"/>' in root and '<node name="MenuBar"/>' in root


def test_no_session_bus_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "bus").write_text("not a socket")  # hostile: a plain file where the user bus socket would be
    with pytest.raises(BusError, match=r"no session bus \(DBUS_SESSION_BUS_ADDRESS is not set, "
                                       r"no \$XDG_RUNTIME_DIR/bus\)"):
        connect_session_bus()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    with pytest.raises(BusError, match="cannot connect to the session bus: FileNotFoundError"):
        connect_session_bus()


def test_the_systemd_user_bus_socket_is_found_without_the_variable(session_bus, monkeypatch, tmp_path):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = session_bus.split("unix:path=", 1)[1].split(",", 1)[0]
    (tmp_path / "bus").symlink_to(path)
    service = connect_session_bus()
    try:
        assert service.unique_name.startswith(":")
    finally:
        service.close()


# ------------------------------------------------------------------------------------------- a real host


@pytest.fixture
def xfce_panel(tmp_path, monkeypatch):
    """Xvfb, then a session bus, then xfce4-panel; the bus starts xfconfd, which reads the panel config from
    XDG_CONFIG_HOME, so the XDG dirs point into tmp_path before the bus starts. Yields a bus client."""
    need_program("xfce4-panel", "xfce4-panel", "it is the StatusNotifierItem host this test uses")
    for var in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    started = []
    try:
        xvfb, display = start_xvfb("480x240x24")
        started.append(xvfb)
        monkeypatch.setenv("DISPLAY", display)
        bus, address = start_session_bus()
        started.append(bus)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
        started.append(start_xfce_panel(tmp_path / "xdg_config_home"))
        client = connect_session_bus()
        wait_for(lambda: watcher_present(client), 30, "xfce4-panel to own org.kde.StatusNotifierWatcher")
        yield client
        client.close()
    finally:
        for proc in reversed(started):
            stop(proc)


def _spot(image: Image.Image, colour: tuple[int, int, int], height: int = 32) -> tuple[int, int] | None:
    """The centre of the pixels of this colour in the top `height` rows (the panel), or None."""
    hits = [(x, y) for y in range(height) for x in range(image.width)
            if max(abs(a - b) for a, b in zip(image.getpixel((x, y)), colour)) <= 3]
    if not hits:
        return None
    return sum(x for x, _ in hits) // len(hits), sum(y for _, y in hits) // len(hits)


def test_a_real_xfce_panel_shows_the_item_and_its_menu_clicks_reach_us(xfce_panel):
    paused = threading.Event()
    entries = [MenuEntry("Watching", enabled=lambda: False), None,
               MenuEntry("Pause", paused.set, lambda: not paused.is_set()), MenuEntry("Quit")]
    icon = SniIcon(connect_session_bus(), "facewatch", Image.new("RGBA", (64, 64), GREEN), "facewatch", entries)
    thread = threading.Thread(target=icon.run, daemon=True)
    thread.start()
    screen = XInput()
    try:
        def registered() -> bool:
            (items,) = xfce_panel.call(WATCHER, WATCHER_PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
                                       (WATCHER, "RegisteredStatusNotifierItems"))
            return any(i.startswith(icon.bus_name) for i in items[1])

        wait_for(registered, 10, "the panel to list the item")
        spot = wait_for(lambda: _spot(screen.screenshot(), GREEN[:3]), 10, "the panel to draw the green icon")
        screen.click(*spot)  # opens the menu the panel built from our dbusmenu layout
        wait_for(lambda: screen.screenshot().crop((0, 40, 200, 120)).getextrema() != ((0, 0),) * 3, 10,
                 "the menu to open below the panel")
        screen.key("Down")  # the first enabled item: the status line is disabled, so "Pause"
        screen.key("Return")
        wait_for(paused.is_set, 10, "the panel's click to reach the Pause action")
    finally:
        screen.close()
        icon.stop()
        thread.join(5)


# ------------------------------------------------------------------------------------------- pure parts


def test_split_signature_and_introspection_xml():
    assert split_signature("ia{sv}(ii)asv") == ["i", "a{sv}", "(ii)", "as", "v"]
    assert split_signature("") == []
    xml = introspection_xml([Interface("a.b", methods={"M": Method("is", "b", lambda *a: (True,))},
                                       signals={"S": "u"})])
    assert '<method name="M"><arg type="i" direction="in"/><arg type="s" direction="in"/>' \
           '<arg type="b" direction="out"/></method>' in xml
    assert '<signal name="S"><arg type="u"/></signal>' in xml


def test_argb_pixmaps_scale_and_order_channels():
    image = Image.new("RGBA", (64, 64), (10, 20, 30, 128))
    (w, h, data), (w8, h8, data8) = argb_pixmaps(image, sizes=(64, 8))
    assert (w, h, w8, h8) == (64, 64, 8, 8) and len(data) == 64 * 64 * 4 and len(data8) == 8 * 8 * 4
    assert tuple(data[:4]) == (128, 10, 20, 30)


def test_menu_revision_counts_changes_only():
    label = ["one"]
    menu = dbusmenu.DBusMenu([MenuEntry(lambda: label[0]), None])
    assert not menu.refresh() and menu.revision == 1
    label[0] = "two"
    revision, (_root, props, children) = menu.layout(0, -1, [])
    assert revision == 2 and props == {"children-display": ("s", "submenu")}
    assert children[0] == ("(ia{sv}av)", (1, {"label": ("s", "two"), "enabled": ("b", True),
                                              "visible": ("b", True)}, []))
    assert menu.layout(0, 0, ["label"]) == (2, (0, {}, []))
    assert not menu.click(2) and not menu.click(0) and not menu.click(9)


def test_the_bus_going_away_is_one_line_not_a_traceback(monkeypatch, caplog):
    proc, address = start_session_bus()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    service = connect_session_bus()
    stop(proc)
    wait_for(lambda: "lost the session bus" in caplog.text, what="the lost-bus line")
    with pytest.raises(BusError, match="NameHasOwner failed"):
        watcher_present(service)
    service.close()
    assert "Traceback" not in caplog.text
