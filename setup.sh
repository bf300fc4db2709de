#!/usr/bin/env bash
# Set up lqbench on a fresh Debian/Ubuntu machine with Python 3.11: a .venv in this
# checkout with lqbench installed (editable). `--test` adds what the tests need:
# Debian's lua5.4 + lua-unit (reference runs), chromium (report screenshot), iproute2 (netns).
# The first install compiles llama.cpp (~8 min on 2 cores); pip caches the wheel afterwards.
set -euo pipefail
cd "$(dirname "$0")"
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ] && command -v apt-get >/dev/null; then
  pkgs="lua5.4 lua-unit chromium iproute2"
  missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "lqbench is set up in $(pwd)/.venv"
