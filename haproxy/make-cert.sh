#!/usr/bin/env bash
# A self-signed certificate for local HTTPS: make-cert.sh DIR [HOSTNAME]
# Writes DIR/swarmdash.pem (key + certificate, the form HAProxy's `crt` takes) unless it
# exists. For production use a real certificate (docs/deployment.md: certbot).
set -euo pipefail
dir=${1:?usage: make-cert.sh DIR [HOSTNAME]}
name=${2:-localhost}
pem="$dir/swarmdash.pem"
[ -s "$pem" ] && exit 0
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 -subj "/CN=$name" \
  -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" > "$pem"
chmod 600 "$pem"
echo "$pem"
