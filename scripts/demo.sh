#!/usr/bin/env bash
# The main job: a real container on the embedded default image, on Berth's default bridge network,
# serving HTTP on a published port that the host reaches at 127.0.0.1. Cleans up after itself.
set -euo pipefail
berth() { node "$(dirname "$0")/../bin/berth.js" "$@"; }

name=berth-demo-$$
port=${BERTH_DEMO_PORT:-18080}
cleanup() { berth rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "+ berth run --rm busybox sh -c 'echo \"hello from \$(hostname)\"; ip -4 -o addr show eth0; ip route'"
berth run --rm busybox sh -c 'echo "hello from $(hostname)"; ip -4 -o addr show eth0; ip route'

echo "+ berth run -d --name $name -p 127.0.0.1:$port:80 busybox sh -c '... exec httpd -f -p 80 -h /www'"
berth run -d --name "$name" -p "127.0.0.1:$port:80" busybox sh -c 'mkdir -p /www && echo "served by a berth container" > /www/index.html && exec httpd -f -p 80 -h /www'
berth ps
for _ in $(seq 1 50); do
  if out=$(timeout 2 busybox wget -q -O - "http://127.0.0.1:$port/" 2>/dev/null); then
    echo "+ wget http://127.0.0.1:$port/ → $out"
    exit 0
  fi
  sleep 0.1
done
echo "demo: no answer on 127.0.0.1:$port" >&2
exit 1
