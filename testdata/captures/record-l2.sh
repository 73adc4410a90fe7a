#!/usr/bin/env bash
# Records the real layer-2 control frames the decode tests compare with tshark:
#   lldpd.pcap    lldpd 1.0 LLDPDUs (first one with default timers, then tx-interval 1,
#                 then the shutdown LLDPDU on SIGTERM), captured by tcpdump (pcap format);
#   bridge.pcapng 802.1D config and TCN BPDUs of two Linux kernel bridges (stp_state 1)
#                 meeting on a veth link (root priority 4096, hello 1 s, forward delay 2 s),
#                 captured by dumpcap (pcapng, interface named) on the non-root side.
# Needs root, iproute2, lldpd, tcpdump, dumpcap (wireshark-common). Runs in private network
# namespaces named after this process id, removed on exit. Usage: record-l2.sh [OUTDIR]
set -euo pipefail
out=$(realpath "${1:-$(dirname "$0")}")
tag=ls$$
tmp=$(mktemp -d); chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in a b s1 s2; do ip netns del "$tag-$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_for() { # FILE PATTERN: wait up to 10 s for PATTERN in FILE
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timeout waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

# --- LLDP: lldpd in namespace a, tcpdump in namespace b ---
ip netns add "$tag-a"; ip netns add "$tag-b"
ip link add "$tag-la" netns "$tag-a" type veth peer name "$tag-lb" netns "$tag-b"
ip -n "$tag-a" link set "$tag-la" name eth1 address 52:54:00:00:0a:01
ip -n "$tag-b" link set "$tag-lb" name eth1 address 52:54:00:00:0b:01
ip -n "$tag-a" addr add 192.0.2.1/24 dev eth1
for ns in a b; do ip -n "$tag-$ns" link set lo up; ip -n "$tag-$ns" link set eth1 up; done

ip netns exec "$tag-b" tcpdump -i eth1 -U -w "$out/lldpd.pcap" ether proto 0x88cc 2>"$tmp/tcpdump.log" &
pids+=($!)
wait_for "$tmp/tcpdump.log" "listening on"
ip netns exec "$tag-a" unshare --uts sh -c \
  "hostname leaf1; exec lldpd -d -k -S 'linkscope lab switch' -m 192.0.2.1 -M 4 -I eth1 -u $tmp/lldpd.sock" \
  >"$tmp/lldpd.log" 2>&1 &
lldpd_pid=$!
pids+=($lldpd_pid)
for _ in $(seq 50); do [ -S "$tmp/lldpd.sock" ] && break; sleep 0.1; done
sleep 2
lldpcli=(ip netns exec "$tag-a" lldpcli -u "$tmp/lldpd.sock")
"${lldpcli[@]}" configure lldp portidsubtype ifname >/dev/null
"${lldpcli[@]}" configure lldp tx-interval 1 >/dev/null
sleep 3
kill -TERM "$lldpd_pid"
wait "$lldpd_pid" || true
sleep 1

# --- STP: two kernel bridges, dumpcap on the root's neighbour ---
ip netns add "$tag-s1"; ip netns add "$tag-s2"
ip link add "$tag-p1" netns "$tag-s1" type veth peer name "$tag-p2" netns "$tag-s2"
for i in 1 2; do
  ns=$tag-s$i
  ip -n "$ns" link set "$tag-p$i" name eth1 address "52:54:00:00:0$i:01"
  ip -n "$ns" link add br0 address "52:54:00:00:0$i:00" type bridge
  ip -n "$ns" link set eth1 master br0
  ip netns exec "$ns" sh -c 'echo 100 > /sys/class/net/br0/bridge/hello_time;
    echo 200 > /sys/class/net/br0/bridge/forward_delay'
done
ip netns exec "$tag-s1" sh -c 'echo 4096 > /sys/class/net/br0/bridge/priority'
for i in 1 2; do ip -n "$tag-s$i" link set eth1 up; done
# A second port on s2 becomes designated; its move to forwarding makes s2 send TCNs.
ip -n "$tag-s2" link add eth2 type veth peer name eth2p
ip -n "$tag-s2" link set eth2 master br0
ip -n "$tag-s2" link set eth2p up
ip -n "$tag-s2" link set eth2 up
ip netns exec "$tag-s2" dumpcap -i eth1 -f "ether dst 01:80:c2:00:00:00" -w "$out/bridge.pcapng" \
  2>"$tmp/dumpcap.log" &
pids+=($!)
wait_for "$tmp/dumpcap.log" "Capturing on"
for i in 1 2; do
  ip netns exec "$tag-s$i" sh -c 'echo 1 > /sys/class/net/br0/bridge/stp_state'
  ip -n "$tag-s$i" link set br0 up
done
sleep 9
echo "wrote $out/lldpd.pcap and $out/bridge.pcapng"
