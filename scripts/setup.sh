#!/usr/bin/env bash
# Installs what Berth needs on a fresh Debian machine that has only node and npm, builds it, and puts
# `berth` on PATH. Idempotent: a second run checks and does nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

# attr: setfattr for opaque whiteouts; socat: stdin to conmon's attach socket; zstd: zstd layers.
APT_PACKAGES=(runc conmon catatonit iptables iproute2 busybox-static dnsmasq-base socat attr zstd procps util-linux)
# `--test`: what the test suite needs beside Berth's own tools. docker-registry (the CNCF distribution
# registry) is the registry the tests push to and pull from on 127.0.0.1; skopeo is the peer the interop tests
# check against; htpasswd (apache2-utils) and openssl make the registry's logins and certificates.
# Installing docker-registry starts nothing here (no systemd); the tests start their own on 127.0.0.1.
# docker-compose (1.29, Python) is a client of the Engine API that the service's tests drive.
# etcd-server (3.4) is the cluster store the multi-host network tests start on 127.0.0.1 (or an underlay
# address) with a temp data dir, and stop by PID; etcd-client (etcdctl) turns on auth in the store's tests.
# openssh-server and openssh-client: the remote-engine tests run sshd in a namespace of their own (with
# their own host key and config; nothing is started by installing it here) and reach it with ssh.
if [ "${1:-}" = "--test" ]; then
  APT_PACKAGES+=(docker-registry skopeo apache2-utils openssl docker-compose etcd-server etcd-client openssh-server openssh-client)
fi
NODE_MAJOR_MIN=20

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "node is not installed: install Node.js ${NODE_MAJOR_MIN}+ first"
[ "$node_major" -ge "$NODE_MAJOR_MIN" ] || die "node $(node --version) is too old: Berth needs Node.js ${NODE_MAJOR_MIN}+"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]}; run this script as root, or install them with: sudo apt-get install ${missing[*]}"
  command -v apt-get >/dev/null || die "missing packages: ${missing[*]}, and this machine has no apt-get: install them by hand"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in runc conmon catatonit iptables ip busybox dnsmasq socat; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || [ -x "/usr/bin/$tool" ] || [ -x "/bin/$tool" ] || die "$tool not found after install"
done
runc_version=$(runc --version | awk 'NR==1 {print $3}')
case "$runc_version" in 1.*) ;; *) die "runc $runc_version is not 1.x";; esac

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  # Not `npm ci`: the lock holds no entries for other platforms' optional packages (rollup, esbuild), which
  # npm ci then calls out of sync; `npm install` installs the locked versions all the same.
  npm install --no-audit --no-fund --loglevel=error
fi
say "building"
npm run --silent build

# berth on PATH: a link to this checkout's entry point.
bin_dir=/usr/local/bin
if [ -w "$bin_dir" ]; then
  ln -sf "$PWD/bin/berth.js" "$bin_dir/berth"
  chmod +x bin/berth.js
else
  say "cannot write $bin_dir: run berth as $PWD/bin/berth.js"
fi
say "ready: $(node bin/berth.js --version 2>/dev/null || echo 'berth built')"
