#!/usr/bin/env bash
# Installs the Debian package dataset-fashion-mnist. As root it is installed system-wide;
# otherwise the .deb is downloaded and unpacked into $SELFPRUNE_CACHE (default ~/.cache/selfprune).
set -euo pipefail
system_dir=/usr/share/datasets/fashion-mnist
cache=${SELFPRUNE_CACHE:-$HOME/.cache/selfprune}
if [ -f "$system_dir/train-images-idx3-ubyte.gz" ] || [ -f "$cache/deb/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
else
  mkdir -p "$cache/deb"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null && dpkg -x ./*.deb "$cache/deb")
  rm -rf "$tmp"
fi
echo "fashion-mnist ready"
