#!/usr/bin/env bash
# What `make test` needs beyond `make run` on Debian/Ubuntu: a virtual X server (Xvfb) and
# xdotool, so that a test can start the real window on an X11 display and type into it.
# Elsewhere (no dpkg) it does nothing, and that test says why it cannot run.
set -euo pipefail
exec bash "$(dirname "$0")/apt-missing.sh" "test tools (a virtual display)" \
    xvfb xauth xdotool
