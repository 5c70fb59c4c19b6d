#!/usr/bin/env bash
# The PostgreSQL store's test needs: the `postgres` extra (psycopg) in ./.venv, and Debian's
# `postgresql` package (initdb, pg_ctl: tests/pg_server.py starts a throwaway server) when
# running as root where apt-get exists. Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate

python -c "import psycopg" 2>/dev/null || python -m pip install --quiet -e ".[postgres]"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "amlab setup: installing PostgreSQL for the store's tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "amlab setup: PostgreSQL is not installed; its store tests will be skipped" >&2
  fi
fi
