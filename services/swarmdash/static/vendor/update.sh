#!/usr/bin/env bash
# Re-vendor the dashboard's browser libraries from npm: installs the exact versions pinned in
# package.json / package-lock.json into a temporary directory, copies the built files next to
# this script and records their versions and sha256 in VERSIONS.
#   bash services/swarmdash/static/vendor/update.sh          # exact versions of the lock file
#   bash services/swarmdash/static/vendor/update.sh --latest # move to the newest releases
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$here/package.json" "$work/"
if [ "${1:-}" = "--latest" ]; then
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error \
     socket.io-client@latest uplot@latest)
else
  [ -f "$here/package-lock.json" ] && cp "$here/package-lock.json" "$work/"
  (cd "$work" && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error;
                  else npm install --no-audit --no-fund --loglevel=error; fi)
fi
cp "$work/package.json" "$work/package-lock.json" "$here/"

copy() {  # package, file inside the package, name here
  cp "$work/node_modules/$1/$2" "$here/$3"
}
copy socket.io-client dist/socket.io.min.js socket.io.min.js
copy uplot dist/uPlot.iife.min.js uPlot.iife.min.js
copy uplot dist/uPlot.min.css uPlot.min.css

version() { node -p "require('$work/node_modules/$1/package.json').version"; }
{
  echo "# Vendored browser libraries: package@version, file, sha256 (written by update.sh)."
  for entry in "socket.io-client socket.io.min.js" "uplot uPlot.iife.min.js" "uplot uPlot.min.css"; do
    set -- $entry
    echo "$1@$(version "$1") $2 $(sha256sum "$here/$2" | cut -d' ' -f1)"
  done
} > "$here/VERSIONS"
cat "$here/VERSIONS"
