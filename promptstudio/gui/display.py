"""Can a window be shown here? Asked before Qt is started, because Qt cannot answer it.

When Qt cannot load its platform plugin or reach the display it prints a list of plugins
and aborts the process; a user sees a wall of text or, from a desktop icon, nothing at all.
So on Linux the app first finds out what Qt would need (a display to connect to and, for
X11, the xcb libraries its plugin links against) and says in plain words what is missing
and how to get it. Elsewhere Qt's wheels bring everything they need, and nothing is checked.

This module imports no Qt: it must work when Qt itself would not.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from pathlib import Path

NO_WINDOW_PLATFORMS = {"offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"}
_MISSING_LIBRARY = re.compile(r"([\w.+-]+\.so(?:\.[\d.]+)?): cannot open shared object file")
_PACKAGE_EXCEPTIONS = {"libglib-2.0.so.0": "libglib2.0-0"}
X11_PACKAGES = ("libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4", "libxcb-keysyms1",
                "libxcb-shape0", "libxcb-render-util0", "libxcb-image0", "libxcb-randr0",
                "libxcb-xinerama0", "libxcb-xkb1", "libx11-xcb1")
"""What Qt's xcb plugin links against beyond a desktop's usual libraries, by Debian name
(packaging/system-deps.sh installs the same list)."""
CLI_HINT = ("The commands work without a window: run `promptstudio --help` in a terminal.")


def problem(environ: dict[str, str] | None = None) -> str | None:
    """Why the window cannot be shown here, in words for the user; None when it can."""
    if not sys.platform.startswith("linux"):
        return None
    env = os.environ if environ is None else environ
    platforms = [p.strip() for p in env.get("QT_QPA_PLATFORM", "").split(";") if p.strip()]
    if platforms and platforms[0].split(":")[0] in NO_WINDOW_PLATFORMS:
        return None
    wants_xcb = platforms[0].startswith("xcb") if platforms else not env.get("WAYLAND_DISPLAY")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("PromptStudio cannot open its window: there is no display here (this looks "
                "like a terminal without a desktop, such as an SSH session; neither DISPLAY "
                "nor WAYLAND_DISPLAY is set). Start PromptStudio from your desktop. "
                + CLI_HINT)
    if not wants_xcb:
        return None
    return missing_library_problem(xcb_plugin()) or connection_problem(env.get("DISPLAY", ""))


def xcb_plugin() -> Path | None:
    """Qt's X11 platform plugin, where the installed PySide6 keeps it."""
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for candidate in (Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so",
                          Path(folder) / "plugins" / "platforms" / "libqxcb.so"):
            if candidate.is_file():
                return candidate
    return None


def missing_library_problem(plugin: Path | None) -> str | None:
    """Load the plugin as Qt would; a library it needs and cannot find is named."""
    if plugin is None:
        return None
    try:
        ctypes.CDLL(str(plugin))
    except OSError as exc:
        return library_message(str(exc))
    return None


def library_message(loader_error: str) -> str:
    """What the dynamic loader's complaint means for the user, and what to install."""
    found = _MISSING_LIBRARY.search(loader_error)
    if found is None:
        return ("PromptStudio cannot open its window: Qt's X11 support does not load "
                f"({loader_error}). Reinstall PromptStudio. " + CLI_HINT)
    library = found.group(1)
    packages = dict.fromkeys((debian_package(library), *X11_PACKAGES))
    return (f"PromptStudio cannot open its window: the system library {library}, which "
            "showing windows on X11 needs, is not installed. On Debian or Ubuntu, install it "
            f"and the others Qt needs with: sudo apt install {' '.join(packages)} (`make run` "
            f"does this for you). On other systems, install the package that provides "
            f"{library}. " + CLI_HINT)


def debian_package(library: str) -> str:
    """The Debian package that ships a library, by Debian's naming rule: libfoo.so.4 is in
    libfoo4, and libfoo-x11.so.0 (a name ending in a digit) in libfoo-x11-0."""
    if library in _PACKAGE_EXCEPTIONS:
        return _PACKAGE_EXCEPTIONS[library]
    name, _, version = library.partition(".so")
    name, version = name.lower(), version.lstrip(".").split(".")[0]
    if not version:
        return name
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def connection_problem(display: str) -> str | None:
    """Connect to the X server as Qt will; a refusal is told in words."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError as exc:
        return library_message(str(exc))
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = (ctypes.c_char_p, ctypes.POINTER(ctypes.c_int))
    xcb.xcb_connection_has_error.argtypes = (ctypes.c_void_p,)
    xcb.xcb_disconnect.argtypes = (ctypes.c_void_p,)
    screen = ctypes.c_int(0)
    connection = xcb.xcb_connect(display.encode(), ctypes.byref(screen))
    try:
        error = xcb.xcb_connection_has_error(connection) if connection else -1
    finally:
        if connection:
            xcb.xcb_disconnect(connection)
    if error == 0:
        return None
    return (f"PromptStudio cannot open its window: the display {display!r} does not answer "
            "(its X server is not running, or this user may not use it). Start PromptStudio "
            "from your desktop, or check the DISPLAY setting. " + CLI_HINT)
