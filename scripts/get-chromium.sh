#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver, the headless browser the HTML report tests drive.
# Needs root (apt-get); does nothing when /usr/bin/chromium and /usr/bin/chromedriver already exist.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "get-chromium.sh: installing chromium needs root: sudo apt-get install chromium chromium-driver" >&2
  echo "(or set SELFPRUNE_NO_BROWSER=1 to skip the browser tests of the HTML report)" >&2
  exit 1
fi
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
echo "chromium ready"
