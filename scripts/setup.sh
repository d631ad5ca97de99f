#!/usr/bin/env bash
# Installs what Berth needs on a fresh Debian machine that has only node and npm, builds it, and puts
# `berth` on PATH. Idempotent: a second run checks and does nothing new.
# A built tree (what `berth machine create` copies: dist/ and the runtime node_modules, no sources) is
# neither npm-installed nor built again. `--bin-dir DIR` links berth there instead of /usr/local/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

# attr: setfattr for opaque whiteouts; socat: stdin to conmon's attach socket; zstd: zstd layers.
APT_PACKAGES=(runc conmon catatonit iptables iproute2 busybox-static dnsmasq-base socat attr zstd procps util-linux uidmap slirp4netns)
# `--test`: what the test suite needs beside Berth's own tools. docker-registry (the CNCF distribution
# registry) is the registry the tests push to and pull from on 127.0.0.1; skopeo is the peer the interop tests
# check against; htpasswd (apache2-utils) and openssl make the registry's logins and certificates.
# Installing docker-registry starts nothing here (no systemd); the tests start their own on 127.0.0.1.
# setcap (libcap2-bin) gives a test image a file capability, which the user-namespace tests check survives.
# docker-compose (1.29, Python) is a client of the Engine API that the service's tests drive.
# etcd-server (3.4) is the cluster store the multi-host network tests start on 127.0.0.1 (or an underlay
# address) with a temp data dir, and stop by PID; etcd-client (etcdctl) turns on auth in the store's tests.
# `--rootless-user NAME`: NAME may run Berth without root (issue 18): newuidmap/newgidmap (uidmap) map its
# user namespace from the /etc/subuid and /etc/subgid lines added below; slirp4netns gives its containers
# their network; storage is native overlayfs in the user namespace (Linux 5.11+).
# openssh-server and openssh-client: the remote-engine tests run sshd in a namespace of their own (with
# their own host key and config; nothing is started by installing it here) and reach it with ssh.
test_deps=0
rootless_user=
bin_dir=/usr/local/bin
peers=0
while [ $# -gt 0 ]; do
  case "$1" in
    --test) test_deps=1; shift ;;
    --peers) peers=1; shift ;;
    --rootless-user) [ $# -ge 2 ] || { echo "setup: error: --rootless-user needs a user name" >&2; exit 1; }; rootless_user=$2; shift 2 ;;
    --bin-dir) [ $# -ge 2 ] || { echo "setup: error: --bin-dir needs a folder" >&2; exit 1; }; bin_dir=$2; shift 2 ;;
    *) echo "setup: error: unknown option $1 (known: --test, --peers, --rootless-user NAME, --bin-dir DIR)" >&2; exit 1 ;;
  esac
done
if [ "$test_deps" = 1 ]; then
  APT_PACKAGES+=(docker-registry skopeo apache2-utils openssl docker-compose etcd-server etcd-client openssh-server openssh-client libcap2-bin strace)
fi
if [ -n "$rootless_user" ]; then
  APT_PACKAGES+=(uidmap slirp4netns fuse-overlayfs)
fi
# `--peers` (issue 20): the engines the benchmarks measure beside Berth in the same run (`npm run bench`
# measures them by default when installed). Podman is installed without recommends, so its network
# backend (CNI plugins) is named; crun is there to measure `--runtime` choices where it runs (it refuses this
# machine's hybrid cgroups, so Podman's runtime is set to runc below). Installing docker.io starts no
# daemon here (no systemd); the bench starts its own dockerd and stops it by PID.
if [ "$peers" = 1 ]; then
  APT_PACKAGES+=(podman docker.io crun buildah skopeo containernetworking-plugins)
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
  # apt-get update exits 0 when a source cannot be reached (it only warns): the install's failure is the test.
  apt_log=$(mktemp)
  apt-get update -qq >"$apt_log" 2>&1 || true
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1; then
    tail -n 5 "$apt_log" | sed 's/^/setup: apt: /' >&2
    rm -f "$apt_log"
    die "could not install the missing packages ${missing[*]} (apt-get could not fetch them: no package source reachable?); install them with: apt-get update && apt-get install ${missing[*]} (or from a local mirror or .deb files), then run this script again"
  fi
  rm -f "$apt_log"
fi

for tool in runc conmon catatonit iptables ip busybox dnsmasq socat; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || [ -x "/usr/bin/$tool" ] || [ -x "/bin/$tool" ] || die "$tool not found after install"
done
runc_version=$(runc --version | awk 'NR==1 {print $3}')
case "$runc_version" in 1.*) ;; *) die "runc $runc_version is not 1.x";; esac

if [ -f .berth-built ]; then
  [ -f dist/cli/main.cjs ] || die "this is a built tree (.berth-built) without dist/cli/main.cjs: copy it again (berth machine upgrade)"
  say "built tree: $(cat .berth-built); not installing npm dependencies or building"
else
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
    say "installing npm dependencies"
    # Not `npm ci`: the lock holds no entries for other platforms' optional packages (rollup, esbuild), which
    # npm ci then calls out of sync; `npm install` installs the locked versions all the same.
    npm install --no-audit --no-fund --loglevel=error
  fi
  say "building"
  npm run --silent build
fi

# The ids of user-namespaced containers (--userns auto, userns-remap "default"): a "berth" line in
# /etc/subuid and /etc/subgid. Added once, never changed afterwards; other users' lines are left alone.
# The range starts above what useradd hands out (100000 + 65536 per user) and must overlap no other line.
subid_line="berth:1000000000:1000000000"
for f in /etc/subuid /etc/subgid; do
  if grep -q '^berth:' "$f" 2>/dev/null; then continue; fi
  if [ ! -w "$f" ] && [ -e "$f" ] || [ ! -w "$(dirname "$f")" ]; then
    say "cannot write $f: add the line \"$subid_line\" to it for --userns auto"
    continue
  fi
  overlap=$(awk -F: -v s=1000000000 -v n=1000000000 '$0 !~ /^#/ && NF == 3 && $2 < s + n && $2 + $3 > s {print $1}' "$f" 2>/dev/null || true)
  if [ -n "$overlap" ]; then
    say "not adding \"$subid_line\" to $f: it overlaps the range of $overlap; add a berth line by hand"
    continue
  fi
  say "adding \"$subid_line\" to $f"
  printf '%s\n' "$subid_line" >> "$f"
done

# A range of 65536 ids from 100000 up that no line of FILE overlaps (Debian's useradd starts there too).
free_subid_start() {
  awk -F: 'NF >= 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { print $2, $2 + $3 }' "$1" | sort -n |
    awk -v start=100000 -v count=65536 '{ if ($1 < start + count && $2 > start) start = $2 } END { print start }'
}

# Idempotent: a user that has a line (by name or uid) keeps it; otherwise one range is appended.
if [ -n "$rootless_user" ]; then
  [ "$(id -u)" -eq 0 ] || die "--rootless-user edits /etc/subuid and /etc/subgid: run this script as root"
  uid=$(id -u "$rootless_user" 2>/dev/null) || die "no such user: $rootless_user"
  for f in /etc/subuid /etc/subgid; do
    touch "$f"
    if grep -qE "^(${rootless_user}|${uid}):" "$f"; then
      say "$f already has a range for $rootless_user"
    else
      line="$rootless_user:$(free_subid_start "$f"):65536"
      echo "$line" >> "$f"
      say "added $line to $f"
    fi
  done
  # slirp4netns opens /dev/net/tun as the user; udev makes it 0666, some machines have it 0600.
  if [ -e /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    chmod 0666 /dev/net/tun
    say "made /dev/net/tun usable by every user (0666, as udev does); make it last with a udev rule or at boot"
  fi
  say "$rootless_user may run berth now (store in ~/.local/share/berth); ports below $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start) stay root's"
fi

# Podman's settings for this kind of machine (MACHINE-NOTES.md): runc, as crun refuses hybrid cgroups;
# default ulimits within the hard limits (nofile 20000); cgroupfs and a file event log, as there is no
# systemd. They go in /etc/containers/containers.conf, not a CONTAINERS_CONF file: Podman does not pass
# CONTAINERS_CONF to the cleanup processes its monitors start. A file this script wrote (first line below)
# is rewritten; anyone else's is left alone unless it already has the settings.
if [ "$peers" = 1 ]; then
  conf=/etc/containers/containers.conf
  conf_marker='# Berth bench (MACHINE-NOTES): podman on this machine (scripts/setup.sh --peers)'
  conf_body='[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
  if [ ! -e "$conf" ] || head -n1 "$conf" | grep -q '^# Berth bench (MACHINE-NOTES)'; then
    mkdir -p "$(dirname "$conf")"
    printf '%s\n%s\n' "$conf_marker" "$conf_body" > "$conf.tmp"
    mv "$conf.tmp" "$conf"
    say "wrote Podman's settings to $conf"
  elif grep -qE '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$conf" && grep -q 'nofile=20000' "$conf"; then
    say "$conf already sets runtime runc and nofile 20000"
  else
    say "$conf is not ours and lacks Podman's settings for this machine; merge these in by hand:"
    printf '%s\n' "$conf_body"
  fi
fi

# berth on PATH: a link to this checkout's entry point.
if [ -w "$bin_dir" ]; then
  ln -sf "$PWD/bin/berth.js" "$bin_dir/berth"
  chmod +x bin/berth.js
else
  say "cannot write $bin_dir: run berth as $PWD/bin/berth.js"
fi
say "ready: $(node bin/berth.js --version 2>/dev/null || echo 'berth built')"
