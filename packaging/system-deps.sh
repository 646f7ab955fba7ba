#!/usr/bin/env bash
# Installs the Debian/Ubuntu libraries that Qt needs to draw, when any is missing: offscreen
# (EGL, GL, fontconfig, ...) and in a window on an X11 desktop (the xcb libraries that Qt's
# xcb plugin links against; the list is promptstudio/gui/display.py's X11_PACKAGES).
# Elsewhere (macOS, Windows, other Linux) it does nothing: Qt's wheels bring what they need.
set -euo pipefail
exec bash "$(dirname "$0")/apt-missing.sh" "system libraries for Qt" \
    libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-dejavu-core \
    libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
    libxcb-render-util0 libxcb-image0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1
