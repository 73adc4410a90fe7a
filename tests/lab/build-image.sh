#!/usr/bin/env bash
# Builds the lab's test VM image into OUT_DIR: `vmlinuz` (the newest Debian cloud kernel from
# apt) and `initrd.img` (busybox-static, the virtio/bridge modules and the /init below).
# Called by tests/lab/image.rs, which caches OUT_DIR under target/lab-image/ keyed by this
# script's content hash; run it by hand to inspect the image: build-image.sh /tmp/img
set -euo pipefail
out=${1:?usage: build-image.sh OUT_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The kernel the cloud meta-package points at (the newest of the stable track), else the
# newest versioned cloud image apt knows.
pick_kernel() {
  apt-cache show --no-all-versions linux-image-cloud-amd64 2>/dev/null |
    sed -n 's/^Depends: \(linux-image-[^ ,]*-cloud-amd64\).*/\1/p' | head -n1
}
pkg=$(pick_kernel)
if [ -z "$pkg" ]; then
  apt-get update -qq
  pkg=$(pick_kernel)
fi
if [ -z "$pkg" ]; then
  pkg=$(apt-cache search --names-only '^linux-image-[0-9].*-cloud-amd64$' |
    awk '{print $1}' | sort -V | tail -n1)
fi
[ -n "$pkg" ] || { echo "build-image.sh: no linux-image-*-cloud-amd64 package known to apt" >&2; exit 1; }

(cd "$work" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed as root' >&2 || true)
deb=$(ls "$work"/*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { echo "build-image.sh: apt-get download $pkg failed" >&2; exit 1; }
dpkg-deb -x "$deb" "$work/kernel"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* | head -n1)
kver=${vmlinuz##*/vmlinuz-}

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
# The initramfs has no libc: busybox must be the static one (package busybox-static).
if ldd /bin/busybox >/dev/null 2>&1; then
  echo "build-image.sh: /bin/busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi
cp /bin/busybox "$root/bin/busybox"
modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net llc stp bridge tls bonding"
for m in $modules; do
  f=$(find "$work/kernel/lib/modules/$kver" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n1)
  [ -n "$f" ] || { echo "build-image.sh: module $m not in $pkg" >&2; exit 1; }
  case "$f" in
    *.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
done
echo "$modules" >"$root/lib/modules/order"

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# The lab VM's whole userland. Its job comes from the kernel command line:
#   ls.name=NAME        label echoed in every result line
#   ls.role=ping|bridge|bond|idle
#                       ping: ping ls.peer and print a summary; bridge: put every ethN in an
#                       STP bridge br0 (the address goes on br0), then ping ls.peer if given;
#                       bond: every ethN in an 802.3ad bond0 (lacp_rate fast; the address on
#                       bond0, LINKSCOPE-BOND lines on every change of how many members
#                       distribute), then ping ls.peer;
#                       idle: configure the address and answer pings for ls.hold seconds
#   ls.addr=IP/LEN      address of eth0 (of br0 for role bridge)
#   ls.peer=IP          whom to ping
#   ls.mtu=N            MTU of eth0 (and br0)
#   ls.size=N ls.count=N ls.interval=SECS
#                       ping payload size (56), count (10), interval (0.2)
#   ls.wait=N           warm-up pings (one a second) allowed before the counted ones (60)
#   ls.hold=N           seconds to keep answering after the result before powering off (30)
# Lines for the test harness start with LINKSCOPE-; LINKSCOPE-PING marks the start of the
# counted pings; LINKSCOPE-CARRIER reports eth0's carrier whenever it changes.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $(cat /lib/modules/order); do
  insmod /lib/modules/$m.ko || echo "LINKSCOPE-ERROR insmod $m"
done
name=vm role=ping addr= peer= mtu= size=56 count=10 interval=0.2 wait=60 hold=30
for w in $(cat /proc/cmdline); do
  case "$w" in
    ls.name=*) name=${w#*=} ;;
    ls.role=*) role=${w#*=} ;;
    ls.addr=*) addr=${w#*=} ;;
    ls.peer=*) peer=${w#*=} ;;
    ls.mtu=*) mtu=${w#*=} ;;
    ls.size=*) size=${w#*=} ;;
    ls.count=*) count=${w#*=} ;;
    ls.interval=*) interval=${w#*=} ;;
    ls.wait=*) wait=${w#*=} ;;
    ls.hold=*) hold=${w#*=} ;;
  esac
done
finish() {
  sleep "$hold"
  echo "LINKSCOPE-POWEROFF name=$name"
  poweroff -f
}
i=0
until [ -e /sys/class/net/eth0 ] || [ $i -ge 50 ]; do usleep 100000; i=$((i + 1)); done
if [ ! -e /sys/class/net/eth0 ]; then
  echo "LINKSCOPE-ERROR name=$name no eth0"
  finish
fi
ip link set lo up
ports=$(cd /sys/class/net && ls -d eth* 2>/dev/null)
dev=eth0
if [ "$role" = bridge ]; then
  ip link add br0 type bridge
  echo 200 >/sys/class/net/br0/bridge/forward_delay
  echo 100 >/sys/class/net/br0/bridge/hello_time
  echo 1 >/sys/class/net/br0/bridge/stp_state
  for p in $ports; do
    [ -n "$mtu" ] && ip link set "$p" mtu "$mtu"
    ip link set "$p" master br0
    ip link set "$p" up
  done
  dev=br0
fi
if [ "$role" = bond ]; then
  # bonding.ko made bond0; configure it through sysfs (busybox ip has no bond options).
  echo 802.3ad >/sys/class/net/bond0/bonding/mode
  echo fast >/sys/class/net/bond0/bonding/lacp_rate
  echo 100 >/sys/class/net/bond0/bonding/miimon
  for p in $ports; do
    ip link set "$p" down
    echo "+$p" >/sys/class/net/bond0/bonding/slaves
  done
  dev=bond0
  (
    n=0 last=none
    while true; do
      # Members whose actor state has Distributing (0x20) set.
      c=$(awk '/details actor lacp pdu/ {a = 1} a && /port state:/ {if (int($NF / 32) % 2) n++; a = 0} END {print n + 0}' /proc/net/bonding/bond0 2>/dev/null)
      if [ "$c" != "$last" ]; then
        n=$((n + 1))
        echo "LINKSCOPE-BOND name=$name n=$n ports=$c"
      fi
      last=$c
      usleep 100000
    done
  ) &
fi
[ -n "$mtu" ] && ip link set "$dev" mtu "$mtu"
[ -n "$addr" ] && ip addr add "$addr" dev "$dev"
ip link set "$dev" up
echo "LINKSCOPE-READY name=$name role=$role dev=$dev mtu=$(cat /sys/class/net/$dev/mtu) mac=$(cat /sys/class/net/eth0/address)"
# eth0's carrier on every change (a cable pulled through QMP set_link shows here).
(
  last=none
  while true; do
    c=$(cat /sys/class/net/eth0/carrier 2>/dev/null)
    [ "$c" != "$last" ] && echo "LINKSCOPE-CARRIER name=$name carrier=$c after=$last"
    last=$c
    usleep 100000
  done
) &
if [ "$role" = bridge ]; then
  i=0
  while [ $i -lt 300 ]; do
    states=
    all=1
    for p in $ports; do
      s=$(cat /sys/class/net/$p/brport/state)
      states="$states$p:$s,"
      [ "$s" = 3 ] || all=0
    done
    [ $all = 1 ] && break
    usleep 100000
    i=$((i + 1))
  done
  echo "LINKSCOPE-BRIDGE name=$name ports=${states%,} bridge_id=$(cat /sys/class/net/br0/bridge/bridge_id) root_id=$(cat /sys/class/net/br0/bridge/root_id)"
fi
if [ -n "$peer" ] && [ "$role" != idle ]; then
  # Warm-up: the first ARP, and a peer that boots later than us.
  warm=1
  until ping -c 1 -W 1 -s "$size" "$peer" >/dev/null 2>&1; do
    [ $warm -ge "$wait" ] && break
    warm=$((warm + 1))
  done
  echo "LINKSCOPE-PING name=$name peer=$peer count=$count interval=$interval warmup=$warm"
  out=$(ping -c "$count" -i "$interval" -W 5 -s "$size" "$peer" 2>&1)
  line=$(echo "$out" | grep 'packets transmitted')
  tx=$(echo "$line" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
  rx=$(echo "$line" | sed -n 's/.*, \([0-9]*\) packets received.*/\1/p')
  loss=$(echo "$line" | sed -n 's/.*, \([0-9]*\)% packet loss.*/\1/p')
  # busybox: "round-trip min/avg/max = 0.318/0.475/0.644 ms"
  rtt=$(echo "$out" | sed -n 's/.*min\/avg\/max = \([0-9.]*\/[0-9.]*\/[0-9.]*\) ms.*/\1/p')
  echo "LINKSCOPE-RESULT name=$name role=$role peer=$peer size=$size transmitted=${tx:-0} received=${rx:-0} loss=${loss:-100} warmup=$warm rtt=${rtt:-none}"
else
  echo "LINKSCOPE-RESULT name=$name role=$role"
fi
finish
INIT
chmod 755 "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/initrd.img"
mkdir -p "$out"
cp "$vmlinuz" "$out/vmlinuz.tmp"
mv "$work/initrd.img" "$out/initrd.img.tmp"
echo "$pkg" >"$out/kernel-package"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
echo "build-image.sh: $pkg, $(du -h "$out/initrd.img" | cut -f1) initramfs in $out"
