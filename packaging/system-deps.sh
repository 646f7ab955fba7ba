#!/usr/bin/env bash
# Installs the Debian/Ubuntu libraries that Qt needs to run offscreen, when any is missing.
# Elsewhere (macOS, Windows, other Linux) it does nothing: Qt's wheels bring what they need.
set -euo pipefail
exec bash "$(dirname "$0")/apt-missing.sh" "system libraries for Qt" \
    libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-dejavu-core
