#!/usr/bin/env bash
# Make sure nginx is installed (the deployment test runs deploy/nginx.conf for real).
# Prints the binary's path on stdout; diagnostics go to stderr. Debian's package only;
# the package's own service is not started (the test runs its own nginx).
set -euo pipefail

find_nginx() {
  if command -v nginx >/dev/null 2>&1; then command -v nginx; return 0; fi
  if [[ -x /usr/sbin/nginx ]]; then echo /usr/sbin/nginx; return 0; fi
  return 1
}

if path="$(find_nginx)"; then echo "$path"; exit 0; fi

echo "installing nginx from Debian's packages" >&2
SUDO=""
if [[ "$(id -u)" != "0" ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
($SUDO apt-get update -qq &&
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx) >&2
find_nginx || { echo "nginx is still missing after apt-get install" >&2; exit 1; }
