#!/usr/bin/env bash
# Install the system packages pgark's build, tests and benchmarks need (Debian 12 / Ubuntu).
# Idempotent and cheap on a warm machine: packages already installed (dpkg) are skipped,
# and apt-get update/install only run when something is missing.
#
#   sudo scripts/install-deps.sh            # install what is missing
#   scripts/install-deps.sh --check         # only report; exit 1 if something is missing
#
# Node.js >= 20 is NOT installed here (Debian 12 ships 18); it must already be on PATH.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PACKAGES=(
  "postgresql-${PG_MAJOR}"        # server binaries: /usr/lib/postgresql/${PG_MAJOR}/bin (initdb, pg_ctl, ...)
  "postgresql-client-${PG_MAJOR}" # psql, pg_basebackup, pgbench
  lz4 zstd gzip                   # codec interop
  pgbackrest                      # benchmarks / interop
  time                            # GNU time (/usr/bin/time): peak RSS per call in bench/
  openssh-server                  # ssh transport tests
  util-linux                      # setpriv / runuser (run commands as the postgres user)
  procps                          # ps, pkill used by tooling
  ca-certificates
  python3 make g++                # native npm module builds (node-gyp)
)

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  is_installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} system packages present"
else
  echo "install-deps: missing: ${missing[*]}"
  if ((check_only)); then exit 1; fi
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
      echo "install-deps: not root and no sudo; install manually: apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q </dev/null
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null
fi

# The postgres OS user is created by the postgresql-common package; tests running as root
# execute the server as this user.
if ! getent passwd postgres >/dev/null; then
  echo "install-deps: OS user 'postgres' is missing (normally created by postgresql-common)" >&2
  exit 1
fi
# Note: Debian may auto-create and start a 'main' cluster on port 5432. It is harmless:
# test clusters use free ephemeral ports and private unix-socket directories.

# Node.js check (not installed by this script).
if ! command -v node >/dev/null 2>&1; then
  echo "install-deps: node not found; install Node.js >= 20 (e.g. from nodejs.org or NodeSource)" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
  echo "install-deps: node $(node --version) is too old; Node.js >= 20 is required" >&2
  exit 1
fi
