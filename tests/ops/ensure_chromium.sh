#!/usr/bin/env bash
# Make sure a headless-capable Chromium is installed (the console test renders the page).
# Prints the browser's path on stdout; diagnostics go to stderr. Debian's package only:
# no browser downloads from the internet at test time.
set -euo pipefail

find_browser() {
  for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}

if path="$(find_browser)"; then echo "$path"; exit 0; fi

echo "installing chromium from Debian's packages" >&2
SUDO=""
if [[ "$(id -u)" != "0" ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
($SUDO apt-get update -qq &&
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core) >&2
find_browser || { echo "chromium is still missing after apt-get install" >&2; exit 1; }
