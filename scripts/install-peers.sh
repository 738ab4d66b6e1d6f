#!/usr/bin/env bash
# Installs the real third-party MCP peers tests/peers/ runs against, pinned and small:
#   tests/peers/node_modules   the TypeScript SDK (@modelcontextprotocol/sdk 1.32, its example server
#                              included) and TypeScript fastmcp 4.20, from package-lock.json
#   .venv-peers/mcp-1.30/      mcp 1.30 (404 -32600 "server-error")
#   .venv-peers/mcp-1.9/       mcp 1.9 (400 plain text)
# Each is redone only when its pin file changed. A failed install is reported and skipped (its
# tests then skip, naming the reason); it never stops `make setup`.
set -uo pipefail
cd "$(dirname "$0")/.."
peers=tests/peers

stamp_ok() { [ -f "$1" ] && cmp -s "$1" "$2"; }
install_venv() {  # venv dir, pin file
  python3 -m venv "$1" || return 1
  "$1/bin/python" -m pip install -q -r "$2" 2>&1 | grep -v '^WARNING: Location' >&2
  return "${PIPESTATUS[0]}"
}

if command -v npm >/dev/null 2>&1; then
  if ! stamp_ok "$peers/node_modules/.sessionwatch-stamp" "$peers/package-lock.json"; then
    echo "installing the TypeScript SDK peers (npm ci, tests/peers)..."
    if npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error >/dev/null; then
      cp "$peers/package-lock.json" "$peers/node_modules/.sessionwatch-stamp"
    else
      echo "WARNING: npm ci in $peers failed; the TypeScript peer tests will skip" >&2
    fi
  fi
else
  echo "WARNING: npm not found; the TypeScript peer tests will skip (install Node.js 20)" >&2
fi

for version in 1.30 1.9; do
  venv=".venv-peers/mcp-$version"
  pins="$peers/requirements-mcp-$version.txt"
  if stamp_ok "$venv/.sessionwatch-stamp" "$pins"; then
    continue
  fi
  echo "installing the mcp $version peer ($venv)..."
  rm -rf "$venv"
  if install_venv "$venv" "$pins"; then
    cp "$pins" "$venv/.sessionwatch-stamp"
  else
    echo "WARNING: installing mcp $version into $venv failed; its peer tests will skip" >&2
  fi
done
exit 0
