#!/usr/bin/env bash
# apt-missing.sh "WHAT THEY ARE FOR" PACKAGE...
# Installs those Debian/Ubuntu packages that are not installed yet (with sudo when not root).
# Elsewhere (no dpkg: macOS, Windows, other Linux) it does nothing.
set -euo pipefail
purpose=$1
shift
command -v dpkg-query >/dev/null 2>&1 || exit 0
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing $purpose: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "Run as root: apt-get install ${missing[*]}"; exit 1; }
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
