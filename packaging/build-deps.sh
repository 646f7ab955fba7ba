#!/usr/bin/env bash
# The Debian/Ubuntu libraries a Linux build of the app needs on the *build* machine (`make
# package`). PyInstaller copies every shared library Qt's plugins link against into the app,
# so those present here end up bundled, and the app then runs on desktops that lack them
# (libxcb-cursor0, for one, is missing from many Ubuntu installs). Also a compiler and cmake
# for llama-cpp-python, and Xvfb so that `make package-test` can open the window on X11.
# Elsewhere (no dpkg) it does nothing.
set -euo pipefail
exec bash "$(dirname "$0")/apt-missing.sh" "build libraries for the packaged app" \
    build-essential cmake \
    libegl1 libgl1 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0 fonts-dejavu-core \
    libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 \
    libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 \
    libxcb-xfixes0 libxcb-xkb1 libxcb-render0 libxrender1 libwayland-client0 libwayland-cursor0 \
    libwayland-egl1 \
    xvfb xauth
