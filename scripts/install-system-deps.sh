#!/usr/bin/env bash
# Installs the system packages the lab and its tests use (HAProxy) where this machine allows it.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing haproxy (Debian package)..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
HAProxy is needed for the lab (it plays the sticky ALB) and was not found.
Install it with your package manager, e.g.:
  sudo apt-get install haproxy      # Debian / Ubuntu
  brew install haproxy              # macOS
then run the command again. Everything else installs itself.
MSG
exit 1
