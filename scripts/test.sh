#!/usr/bin/env bash
# Installs what the test suite needs (Debian packages, only when missing; apt-get needs root)
# and runs every check CI runs: formatting, clippy, and the whole test suite including the
# lab tests with real QEMU VMs, namespaces, lldpd and tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

packages=(qemu-system-x86 busybox-static cpio tshark lldpd iproute2 tcpdump vdeplug vde2 socat iperf3 kmod openssh-server openssh-client
  man-db libpcap0.8 wireshark-qt xvfb xdotool imagemagick prometheus chromium chromium-driver python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
