#!/usr/bin/env bash
# Install Debian's Chromium (and its ChromeDriver) for the browser test, if missing; print the
# browser's path. Playwright for Python comes from pyproject's dev extra and drives this
# installed browser: no browser is ever downloaded (no `playwright install`).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "browser.sh: chromium is missing and this user cannot apt-get install it" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium chromium-driver >&2
fi
chromium --version >&2
command -v chromium
