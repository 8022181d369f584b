#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the browser test (tests/browser/). Idempotent: nothing is
# done when /usr/bin/chromium exists. No browser download from the web: the distribution's package only.
# Needs root (or sudo) and apt; the test drives it over the Chrome DevTools Protocol from Python.
set -euo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  echo "chromium ready: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
"$CHROMIUM" --version
