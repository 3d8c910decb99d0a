#!/usr/bin/env bash
# One entry point for the README's commands:
#   scripts/dev.sh serve   create .venv, build (with the Cython speedups), run `wildduck serve` with data in ./data
#   scripts/dev.sh test    create .venv with the test tools, build, run the whole test suite (Cython and pure Python)
#   scripts/dev.sh bench   run every benchmark in bench/
#   scripts/dev.sh installed   exit 0 if `serve` would start without reinstalling (nothing that needs a build changed)
# Works on a fresh Debian 12 machine: missing system packages (python3-venv, a C compiler, python3-dev; swaks, isync,
# offlineimap3, curl, fetchmail, getmail6, mpop, redis-server, haproxy, chromium for the tests) are installed with apt-get (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
$PY -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
have_cmd cc || need_apt+=(gcc)
$PY - <<'PYEOF' 2>/dev/null || need_apt+=(python3-dev)
import sysconfig, os, sys
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
PYEOF
if [ "${1:-}" = test ]; then
  have_cmd swaks || need_apt+=(swaks)
  have_cmd mbsync || need_apt+=(isync)
  have_cmd offlineimap || need_apt+=(offlineimap3)
  have_cmd curl || need_apt+=(curl)
  have_cmd fetchmail || need_apt+=(fetchmail)
  have_cmd getmail || need_apt+=(getmail6)
  have_cmd mpop || need_apt+=(mpop)
  have_cmd redis-server || need_apt+=(redis-server)
  [ -x /usr/sbin/haproxy ] || have_cmd haproxy || need_apt+=(haproxy)
  have_cmd chromium || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing system packages: ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  $PY -m venv "$VENV"
fi

# The package is installed in editable mode: a change to a .py file needs no reinstall. What does need one (the
# metadata, the build, the Cython sources) is hashed into a stamp; `serve` installs only when the hash changed.
STAMP="$VENV/.wildduck-install-stamp"
source_hash() {
  {
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
    find pyproject.toml setup.py wildduck/_speedups -type f \
      \( -name '*.toml' -o -name 'setup.py' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.py' \) -print0 \
      | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}
install() {  # install "$1" (".", ".[dev]") with the build tools, and record what was installed
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel "cython>=3.0"
  "$VENV/bin/python" -m pip install -q --no-build-isolation -e "$1"
  source_hash >"$STAMP"
}

up_to_date() { [ -x "$VENV/bin/wildduck" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(source_hash)" ]; }

case "${1:-}" in
  installed)  # exit 0 when `serve` would start without installing
    up_to_date
    ;;
  serve)
    if up_to_date; then
      echo "wildduck is installed and up to date in $VENV (sources unchanged since the last build)" >&2
    else
      install .
    fi
    shift
    exec "$VENV/bin/wildduck" serve "$@"
    ;;
  test)
    install ".[dev]"
    shift
    # the MongoDB-protocol test server (FerretDB in a Go program of ours): built once here, so that a failing
    # build shows at once; without Go the MongoDB tests are skipped (with CI=true they fail)
    # the Go toolchain's usual place when it is not on PATH
    have_cmd go || { [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"; }
    if have_cmd go; then
      echo "== building the FerretDB test server (tests/servers/ferretdb)" >&2
      "$VENV/bin/python" -c 'from wildduck.testing import ferretdb; print(ferretdb.build())'
    else
      echo "warning: no go (1.24 or later): the MongoDB tests need it to build their FerretDB server" >&2
    fi
    echo "== test suite, Cython speedups" >&2
    "$VENV/bin/wildduck" --version
    WILDDUCK_REQUIRE_EXTENSIONS=1 "$VENV/bin/python" -m pytest "$@"
    echo "== test suite, pure Python (WILDDUCK_NO_EXTENSIONS=1)" >&2
    WILDDUCK_NO_EXTENSIONS=1 "$VENV/bin/wildduck" --version
    WILDDUCK_NO_EXTENSIONS=1 "$VENV/bin/python" -m pytest "$@"
    ;;
  bench)
    install ".[dev]"
    shift
    exec "$VENV/bin/python" bench/run.py "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh serve|test|bench|installed [args...]" >&2
    exit 2
    ;;
esac
