#!/usr/bin/env bash
# Installs what knockwatch needs on a Debian machine with Node, then builds it.
# Idempotent: Debian packages are installed only when missing, `npm ci` runs
# only when node_modules is missing or older than package-lock.json.
#   scripts/setup.sh            runtime + test packages, npm deps, build
# Environment: KNOCKWATCH_SKIP_APT=1 skips the Debian step (e.g. in Docker builds).
set -euo pipefail
cd "$(dirname "$0")/.."

# libpcap-dev/python3/make/g++ build the `cap` addon; nftables/iptables/ipset are
# the firewall backends; iproute2 builds the namespace lab; tcpdump and
# wireshark-common (dumpcap) record fixtures and serve as test oracles; knockd is
# the latency benchmark's comparison, and so are fwknop-server/fwknop-client
# (fwknopd 2.6.10; installing starts nothing: /etc/default/fwknop-server has
# START_DAEMON="no" and the unit is not enabled; the bench runs fwknopd only in
# its lab namespace with its own config files, never /etc/fwknop); clang/llvm/libbpf-dev/bpftool/libelf-dev/
# zlib1g-dev/linux-libc-dev/pkg-config build the eBPF capture backend;
# systemd (systemd-analyze) checks deploy/knockwatch.service; podman/runc/
# mmdebstrap build and run the Docker image (scripts/container-test.sh);
# stress-ng keeps the cores busy for `npm run test:stress`.
PACKAGES=(
  libpcap-dev python3 make g++ pkg-config
  nftables iptables ipset iproute2 procps
  tcpdump wireshark-common knockd fwknop-server fwknop-client
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  systemd podman runc mmdebstrap stress-ng
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && [ "${KNOCKWATCH_SKIP_APT:-0}" != 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root (sudo $0) or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # wireshark-common asks whether non-root users may capture; answer no.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-fund --no-audit
fi

npm run --silent build
npm run --silent build:ebpf
