#!/usr/bin/env bash
# macOS: sign, notarize and wrap dist/PromptStudio.app in a disk image. Run on a Mac after
# `python3 packaging/build.py` (which builds the .app with PyInstaller's BUNDLE step and puts
# the model in PromptStudio.app/Contents/Resources/models/). Cannot run on Linux.
#
#   bash packaging/macos/make-dmg.sh                     # unsigned DMG, for testing
#   SIGN_IDENTITY="Developer ID Application: NAME (TEAMID)" NOTARY_PROFILE=promptstudio \
#       bash packaging/macos/make-dmg.sh                 # signed and notarized
#
# NOTARY_PROFILE names credentials stored once with:
#   xcrun notarytool store-credentials promptstudio --apple-id YOU --team-id TEAMID
set -euo pipefail
cd "$(dirname "$0")/../.."
app=dist/PromptStudio.app
version=$(python3 -c 'import re;print(re.search(r"^version = \"([^\"]+)\"", open("pyproject.toml").read(), re.M).group(1))')
dmg="dist/PromptStudio-$version-macos-$(uname -m).dmg"
[ -d "$app" ] || { echo "Build first: python3 packaging/build.py" >&2; exit 1; }

if [ -n "${SIGN_IDENTITY:-}" ]; then
    # Sign every library and the app with the hardened runtime. The entitlements allow what
    # a Python app with ctypes-loaded libraries (llama.cpp) needs.
    entitlements=packaging/macos/entitlements.plist
    find "$app/Contents" -type f \( -name '*.dylib' -o -name '*.so' \) -print0 |
        xargs -0 codesign --force --timestamp --options runtime --sign "$SIGN_IDENTITY"
    codesign --force --timestamp --options runtime --entitlements "$entitlements" \
        --sign "$SIGN_IDENTITY" "$app"
    codesign --verify --deep --strict --verbose=2 "$app"
fi

staging=$(mktemp -d)
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
rm -f "$dmg"
hdiutil create -volname PromptStudio -srcfolder "$staging" -ov -format UDZO "$dmg"
rm -rf "$staging"

if [ -n "${SIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$SIGN_IDENTITY" "$dmg"
    if [ -n "${NOTARY_PROFILE:-}" ]; then
        xcrun notarytool submit "$dmg" --keychain-profile "$NOTARY_PROFILE" --wait
        xcrun stapler staple "$dmg"
        spctl --assess --type open --context context:primary-signature --verbose "$dmg"
    fi
fi
echo "Wrote $dmg"
