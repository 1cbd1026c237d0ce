#!/usr/bin/env bash
# A self-signed certificate for local HTTPS: make-cert.sh DIR [HOSTNAME] [OWNER]
# Writes DIR/swarmdash.pem (key + certificate, the form HAProxy's `crt` takes, mode 600)
# unless it exists. OWNER (a user or uid) gets the file: the haproxy image runs as uid 99,
# so for docker-compose: `sudo haproxy/make-cert.sh haproxy/certs localhost 99`.
# For production use a real certificate (docs/deployment.md: certbot).
set -euo pipefail
dir=${1:?usage: make-cert.sh DIR [HOSTNAME] [OWNER]}
name=${2:-localhost}
owner=${3:-}
pem="$dir/swarmdash.pem"
if [ -s "$pem" ]; then
  [ -z "${3:-}" ] || chown "$3" "$pem"
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 -subj "/CN=$name" \
  -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" > "$pem"
chmod 600 "$pem"
[ -z "$owner" ] || chown "$owner" "$pem"
echo "$pem"
