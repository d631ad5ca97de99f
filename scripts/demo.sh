#!/usr/bin/env bash
# The main job: a real container on the embedded default image, on Berth's default bridge network,
# serving HTTP on a published port that the host reaches at 127.0.0.1. It runs in a root of its own and
# removes it at the end, with everything Berth made for it (container, bridge, iptables chains, netns): the
# machine's default root, and whatever a user keeps there, is left alone.
set -euo pipefail
demo_root=$(mktemp -d /tmp/berth-demo-XXXXXX)
demo_runroot=/run/berth/demo-${demo_root##*-}
berth() { node "$(dirname "$0")/../bin/berth.js" --root "$demo_root" --runroot "$demo_runroot" "$@"; }

name=berth-demo-$$
port=${BERTH_DEMO_PORT:-18080}
cleanup() {
  berth system reset --force >/dev/null 2>&1 || echo "demo: could not reset its root $demo_root" >&2
  rm -rf "$demo_root" "$demo_runroot"
}
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
