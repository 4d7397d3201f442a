#!/usr/bin/env bash
# The docker-bridge fixture built the way shell harnesses do (iproute2 +
# iptables, named namespaces), one ping across it, then torn down. The
# baseline `netrepro bench` compares itself with. Usage: docker-bridge.sh TAG
set -euo pipefail
t=${1:?tag}
h=nrb-$t-h c=nrb-$t-c e=nrb-$t-e
cleanup() { ip netns del "$h" 2>/dev/null || true; ip netns del "$c" 2>/dev/null || true; ip netns del "$e" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$h"
ip netns add "$c"
ip netns add "$e"
for n in "$h" "$c" "$e"; do ip -n "$n" link set lo up; done
ip netns exec "$h" sysctl -qw net.ipv4.ip_forward=1
ip -n "$h" link add docker0 txqueuelen 0 type bridge
ip -n "$h" addr add 172.17.0.1/16 dev docker0
ip -n "$h" link set docker0 up
ip -n "$h" link add veth0 type veth peer name eth0 netns "$c"
ip -n "$h" link set veth0 master docker0 up
ip -n "$c" addr add 172.17.0.2/16 dev eth0
ip -n "$c" link set eth0 up
ip -n "$c" route add default via 172.17.0.1
ip -n "$h" link add eno1 type veth peer name eth0 netns "$e"
ip -n "$h" addr add 10.2.19.78/24 dev eno1
ip -n "$h" link set eno1 up
ip -n "$e" addr add 10.2.19.80/24 dev eth0
ip -n "$e" link set eth0 up
ip netns exec "$h" iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
ip netns exec "$c" ping -c 1 -W 1 -q 10.2.19.80 >/dev/null
