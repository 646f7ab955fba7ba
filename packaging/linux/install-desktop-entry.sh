#!/bin/sh
# Adds PromptStudio to the desktop's application menu (for this user only; no root needed).
# Run it from the unpacked PromptStudio folder:  ./install-desktop-entry.sh
# Run it again after moving the folder; `./install-desktop-entry.sh --remove` takes it out.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
entry="$data/applications/promptstudio.desktop"
icons="$data/icons/hicolor"
sizes="16 24 32 48 64 128 256 512"

if [ "${1:-}" = "--remove" ]; then
    rm -f "$entry"
    for size in $sizes; do rm -f "$icons/${size}x${size}/apps/promptstudio.png"; done
    rm -f "$icons/scalable/apps/promptstudio.svg"
    echo "PromptStudio was removed from the application menu."
    exit 0
fi

resources="$here/_internal/promptstudio/resources"
[ -x "$here/PromptStudio" ] && [ -d "$resources" ] || {
    echo "Run this script from the PromptStudio folder (next to the PromptStudio program)." >&2
    exit 1
}
for size in $sizes; do
    mkdir -p "$icons/${size}x${size}/apps"
    cp "$resources/icons/promptstudio-$size.png" "$icons/${size}x${size}/apps/promptstudio.png"
done
mkdir -p "$icons/scalable/apps" "$data/applications"
cp "$resources/icons/promptstudio.svg" "$icons/scalable/apps/promptstudio.svg"
# The shipped entry says Exec=PromptStudio; point it at this folder (quoted for spaces).
sed -e "s|^Exec=.*|Exec=\"$here/PromptStudio\"|" -e "/^Exec=/a Path=$here" \
    "$resources/promptstudio.desktop" > "$entry"
chmod 644 "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q "$icons" 2>/dev/null || true
echo "PromptStudio is now in the application menu ($entry)."
