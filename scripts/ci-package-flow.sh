#!/usr/bin/env bash
# CI proof of the release artifacts (.ci/run's last phase; run as root on Debian 12 with
# PostgreSQL 15 installed by scripts/install-deps.sh):
#   1. npm run package (scripts/package.sh) builds the tarball and the .deb from this checkout;
#   2. apt-get install ./pgark_<v>_amd64.deb, then a DBA's flow with /usr/bin/pgark as the
#      postgres user, outside the checkout (cd /tmp, a throwaway cluster in a directory postgres
#      owns): setup, archiving under pgbench, backup, a restore point, restore to it, start it
#      and compare rows, drill; nothing in any configuration names the checkout; then
#      apt-get remove pgark, and the repository is still there, unchanged (then purge: the same);
#   3. the same flow from the unpacked tarball with no node on PATH.
# Every step says what it checks; the first failure stops the script with its reason.
#   PGARK_FLOW_SKIP_BUILD=1  use the artifacts already in release/
set -euo pipefail
exec </dev/null
umask 022

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REL="${PGARK_RELEASE_DIR:-$ROOT/release}"
PG_MAJOR="${PG_MAJOR:-15}"
PGBIN="/usr/lib/postgresql/$PG_MAJOR/bin"
T0=$(date +%s)

say() { printf 'flow: [%s +%ss] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - T0))" "$*"; }
die() { printf '\nflow: FAILED: %s\n' "$*" >&2; exit 1; }
[[ "$(id -u)" == 0 ]] || die "run as root (it installs the .deb and runs the flow as postgres)"
getent passwd postgres >/dev/null || die "no 'postgres' OS user (install PostgreSQL $PG_MAJOR: scripts/install-deps.sh)"
[[ -x "$PGBIN/initdb" ]] || die "$PGBIN/initdb not found (PostgreSQL $PG_MAJOR server)"

VERSION="$(node -p "require('$ROOT/package.json').version")"
DEB_VERSION="${VERSION//-/\~}"; DEB_VERSION="${DEB_VERSION//+/\~}"
TARBALL="$REL/pgark-$VERSION-linux-x64.tar.gz"
DEB="$REL/pgark_${DEB_VERSION}_amd64.deb"

# --- 1. build ------------------------------------------------------------------------------------
if [[ "${PGARK_FLOW_SKIP_BUILD:-}" != 1 ]]; then
  say "building the artifacts (npm run package)"
  (cd "$ROOT" && PGARK_RELEASE_DIR="$REL" bash scripts/package.sh) || die "npm run package failed"
fi
[[ -f "$TARBALL" ]] || die "$TARBALL was not built"
[[ -f "$DEB" ]] || die "$DEB was not built"
say "artifacts: $(du -h "$TARBALL" | cut -f1) $(basename "$TARBALL"), $(du -h "$DEB" | cut -f1) $(basename "$DEB")"

WORK="$(mktemp -d /tmp/pgark-flow.XXXXXX)"
chmod 0755 "$WORK"
HAD_VARLIB=0; [[ -e /var/lib/pgark ]] && HAD_VARLIB=1
DEB_STANZA="flow-$(date +%s)"
cleanup() {
  local rc=$?
  # Leave the machine as it was: no pgark package (its /etc/pgark/pgark.conf would make every
  # later `pgark setup` name it), no stanza of ours, no /var/lib/pgark unless it was there.
  if dpkg-query -W -f='${Status}' pgark 2>/dev/null | grep -q 'ok \(installed\|config-files\)'; then
    dpkg --purge pgark >/dev/null 2>&1 || echo "flow: could not purge the pgark package" >&2
  fi
  rm -rf "/var/lib/pgark/$DEB_STANZA"
  ((HAD_VARLIB)) || rmdir /var/lib/pgark 2>/dev/null || true
  for d in "$WORK"/*/data "$WORK"/*/restored; do
    [[ -f "$d/postmaster.pid" ]] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
  done
  if ((rc != 0)); then
    for l in "$WORK"/*/*.log; do [[ -f "$l" ]] && { echo "---- $l (last 30 lines)"; tail -n 30 "$l"; }; done >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The flow itself, run as postgres by run_flow: $1 label, $2 pgark command, $3 repository, $4 stanza.
cat > "$WORK/flow.sh" <<'FLOW'
set -euo pipefail
label=$1 PGARK=$2 REPO=$3 STANZA=$4 W=$5 CHECKOUT=$6
say() { printf 'flow: [%s] %s: %s\n' "$(date -u +%H:%M:%S)" "$label" "$*"; }
die() { printf '\nflow: FAILED (%s): %s\n' "$label" "$*" >&2; exit 1; }
run() { "$@" || die "'$*' exited $?"; }
cd /tmp
[[ "$(id -un)" == postgres ]] || die "not running as postgres"
if [[ "$label" == tarball ]] && command -v node >/dev/null 2>&1; then die "node is on PATH ($(command -v node)): the tarball flow must run without it"; fi

v=$(run "$PGARK" version)
say "$v"
[[ "$v" == *"(node v"* ]] || die "unexpected 'pgark version' output: $v"

# A throwaway cluster: unix socket in a private directory, no TCP.
D=$W/data; S=$W/sock; mkdir -p "$S"; chmod 0700 "$S"
run initdb -D "$D" -U postgres --auth=trust >"$W/initdb.log" 2>&1
printf "listen_addresses = ''\nunix_socket_directories = '%s'\nport = 5432\n" "$S" >> "$D/postgresql.conf"
run pg_ctl -D "$D" -l "$W/primary.log" -w start >/dev/null
export PGHOST=$S PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# Repositories are created explicitly where pgark has `repo create`.
if "$PGARK" help | grep -qE '^  repo( |$)'; then run "$PGARK" repo create --repo "$REPO" >/dev/null; fi
say "pgark setup"
run "$PGARK" setup --repo "$REPO" --stanza "$STANZA" --pgdata "$D" --restart --log-file "$W/primary.log" >"$W/setup.out"
ac=$(q 'SHOW archive_command')
[[ "$ac" == "'$PGARK' wal-push %p "* ]] || die "archive_command does not run the installed command '$PGARK': $ac"
[[ "$(q 'SHOW archive_mode')" == on ]] || die "archive_mode is not on after setup"

say "archiving under pgbench"
run pgbench -i -s 5 -q >"$W/pgbench-init.log" 2>&1
run pgbench -c 2 -T 5 -n >"$W/pgbench-1.log" 2>&1
say "pgark backup"
run "$PGARK" backup --repo "$REPO" --stanza "$STANZA" --pgdata "$D" --no-progress >"$W/backup.out"
run pgbench -c 2 -T 3 -n >"$W/pgbench-2.log" 2>&1
expected=$(q "SELECT count(*) || ' ' || sum(abalance) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) FROM pgbench_accounts")
q "SELECT pg_create_restore_point('flow_point')" >/dev/null
# Changes after the restore point, which the restore must not replay.
run pgbench -c 2 -t 200 -n >"$W/pgbench-3.log" 2>&1
after=$(q "SELECT count(*) || ' ' || sum(abalance) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) FROM pgbench_accounts")
[[ "$after" != "$expected" ]] || die "pgbench changed nothing after the restore point"
seg=$(q 'SELECT pg_walfile_name(pg_switch_wal())')
for i in $(seq 1 120); do
  last=$(q 'SELECT coalesce(last_archived_wal, $$$$) FROM pg_stat_archiver')
  [[ "$last" > "$seg" || "$last" == "$seg" ]] && break
  failed=$(q 'SELECT failed_count FROM pg_stat_archiver')
  ((i < 120)) || die "segment $seg not archived after 60 s (last archived '$last', failures $failed; see $W/primary.log)"
  sleep 0.5
done
say "archived through $seg ($(q 'SELECT archived_count FROM pg_stat_archiver') segments, $(q 'SELECT failed_count FROM pg_stat_archiver') failures)"

say "pgark restore to the restore point"
R=$W/restored
run "$PGARK" restore --repo "$REPO" --stanza "$STANZA" --pgdata "$R" --target-name flow_point --target-action promote --no-progress >"$W/restore.out"
rc=$(sed -n "s/^restore_command = //p" "$R/postgresql.auto.conf" | tail -n 1)
# postgresql.auto.conf doubles the quotes: restore_command = '''/usr/bin/pgark'' wal-fetch ...'
[[ "$rc" == "'''$PGARK'' wal-fetch %f %p "* ]] || die "restore_command does not run the installed command '$PGARK': $rc"
RS=$W/sock2; mkdir -p "$RS"; chmod 0700 "$RS"
run pg_ctl -D "$R" -l "$W/restored.log" -w -t 300 -o "-c unix_socket_directories='$RS' -c archive_mode=off" start >/dev/null
for i in $(seq 1 120); do
  [[ "$(PGHOST=$RS q 'SELECT pg_is_in_recovery()')" == f ]] && break
  ((i < 120)) || die "the restored copy did not finish recovery in 60 s (see $W/restored.log)"
  sleep 0.5
done
got=$(PGHOST=$RS q "SELECT count(*) || ' ' || sum(abalance) || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) FROM pgbench_accounts")
[[ "$got" == "$expected" ]] || die "the restored copy has '$got', the primary had '$expected' at the restore point"
say "restored rows match the restore point: $got (count, sum of account and branch balances)"
run pg_ctl -D "$R" -m fast -w stop >/dev/null

say "pgark drill"
run "$PGARK" drill --repo "$REPO" --stanza "$STANZA" --scratch "$W" --no-progress >"$W/drill.out"
grep -q . "$W/drill.out" || die "pgark drill printed nothing"

say "no configuration names the checkout or a versioned directory"
for f in "$D/postgresql.conf" "$D/postgresql.auto.conf" "$R/postgresql.conf" "$R/postgresql.auto.conf"; do
  if grep -nF -e "$CHECKOUT" -e 'pgark.js' -e '/runtime/bin/node' "$f"; then die "$f names the checkout, pgark.js or the runtime (above)"; fi
done
# ALTER SYSTEM doubles the quotes: archive_command = '''/usr/bin/pgark'' wal-push ...'
grep -qF "'''$PGARK'' wal-push %p" "$D/postgresql.auto.conf" || die "$D/postgresql.auto.conf does not run '$PGARK'"
run pg_ctl -D "$D" -m fast -w stop >/dev/null
say "ok"
FLOW

# $1 label, $2 pgark command, $3 repository, $4 stanza, $5 PATH for the flow
run_flow() {
  local w="$WORK/$1"
  mkdir -p "$w"; chown postgres: "$w"; chmod 0700 "$w"
  runuser -u postgres -- env -i HOME=/var/lib/postgresql LANG=C.UTF-8 PATH="$5" \
    bash "$WORK/flow.sh" "$1" "$2" "$3" "$4" "$w" "$ROOT" || die "the $1 flow failed (above)"
}

# Repository content, for "left alone": every file with its size and checksum.
repo_digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1); }

# --- 2. the .deb ------------------------------------------------------------------------------------
if dpkg-query -W -f='${Status}' pgark 2>/dev/null | grep -q 'install ok installed'; then
  say "removing an installed pgark first"
  apt-get remove -y -q pgark >/dev/null || die "apt-get remove of the installed pgark failed"
fi
say "apt-get install $DEB"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$DEB" >"$WORK/apt-install.log" 2>&1 \
  || { cat "$WORK/apt-install.log" >&2; die "apt-get install of the .deb failed"; }
grep '^pgark:' "$WORK/apt-install.log" || true
[[ -x /usr/bin/pgark && -x /usr/bin/pgark-wal-push && -x /usr/bin/pgark-wal-fetch ]] || die "/usr/bin/pgark, pgark-wal-push or pgark-wal-fetch missing"
[[ "$(stat -c '%U %a' /var/lib/pgark)" == "postgres 700" ]] || die "/var/lib/pgark is $(stat -c '%U %a' /var/lib/pgark), expected 'postgres 700'"
[[ -f /etc/pgark/pgark.conf ]] || die "/etc/pgark/pgark.conf missing"
dpkg-query -W -f='${Conffiles}' pgark | grep -q /etc/pgark/pgark.conf || die "/etc/pgark/pgark.conf is not a conffile"
[[ -f /lib/systemd/system/pgark-backup@.timer && -f /usr/share/doc/pgark/copyright && -f /usr/share/man/man1/pgark.1.gz ]] \
  || die "systemd units, copyright or man page missing"
if find /etc/systemd/system -name 'pgark*' 2>/dev/null | grep -q .; then die "a pgark unit is enabled after install: $(find /etc/systemd/system -name 'pgark*')"; fi
runuser -u postgres -- /usr/bin/pgark help >/dev/null || die "pgark help failed"
# The package's wal-push client finds the packaged runtime without node on PATH.
runuser -u postgres -- env -i PATH=/nonexistent /usr/bin/pgark-wal-push --help >/dev/null 2>&1 \
  || die "/usr/bin/pgark-wal-push does not run without node on PATH"
run_flow deb /usr/bin/pgark /var/lib/pgark "$DEB_STANZA" "$PGBIN:/usr/local/bin:/usr/bin:/bin"
before="$(repo_digest /var/lib/pgark/"$DEB_STANZA")"
[[ -n "$(find /var/lib/pgark/"$DEB_STANZA" -type f | head -n 1)" ]] || die "the repository has no files for stanza $DEB_STANZA"

say "apt-get remove pgark"
apt-get remove -y -q pgark >"$WORK/apt-remove.log" 2>&1 || { cat "$WORK/apt-remove.log" >&2; die "apt-get remove failed"; }
[[ ! -e /usr/bin/pgark && ! -e /usr/lib/pgark ]] || die "/usr/bin/pgark or /usr/lib/pgark is still there after apt-get remove"
[[ "$(repo_digest /var/lib/pgark/"$DEB_STANZA")" == "$before" ]] || die "apt-get remove changed the repository /var/lib/pgark"
[[ "$(stat -c '%U %a' /var/lib/pgark)" == "postgres 700" ]] || die "apt-get remove changed /var/lib/pgark's owner or mode"
apt-get purge -y -q pgark >>"$WORK/apt-remove.log" 2>&1 || { cat "$WORK/apt-remove.log" >&2; die "apt-get purge failed"; }
[[ ! -e /etc/pgark/pgark.conf ]] || die "/etc/pgark/pgark.conf is still there after apt-get purge"
[[ "$(repo_digest /var/lib/pgark/"$DEB_STANZA")" == "$before" ]] || die "apt-get purge changed the repository /var/lib/pgark"
say "removed and purged; the repository is unchanged"

# --- 3. the tarball, no node on PATH ----------------------------------------------------------------
say "unpacking $TARBALL"
OPT="$WORK/opt"; mkdir -p "$OPT"
tar -xzf "$TARBALL" -C "$OPT"
[[ -x "$OPT/pgark/bin/pgark" ]] || die "the tarball has no pgark/bin/pgark"
# A PATH with the tools the flow and PostgreSQL's archive_command need, but no node
# (/usr/bin/node exists on this machine, and /bin is /usr/bin on Debian 12).
TOOLS="$WORK/tools"; mkdir -p "$TOOLS"
for t in bash sh env cat grep sed awk sleep mkdir rm chmod ls find date readlink dirname basename stat \
  sha256sum cut head tail wc id mktemp sort tr kill touch cp mv sync seq printf true false test; do
  p="$(command -v "$t" || true)"
  [[ "$p" == /* ]] && ln -s "$p" "$TOOLS/$t"
done
chmod 0755 "$TOOLS"
TREPO="$WORK/tarball-repo"; mkdir -p "$TREPO"; chown postgres: "$TREPO"; chmod 0700 "$TREPO"
run_flow tarball "$OPT/pgark/bin/pgark" "$TREPO" main "$TOOLS:$PGBIN"

say "all flows passed in $(($(date +%s) - T0)) s"
