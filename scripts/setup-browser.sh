#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests of the report and the viewer (Playwright
# drives the system browser; its own browser download does not work offline). Without it,
# those tests are skipped with a reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "amlab setup: installing chromium for the browser tests"
  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
else
  echo "amlab setup: chromium is not installed and cannot be installed here; browser tests will be skipped"
fi
