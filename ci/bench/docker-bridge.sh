#!/usr/bin/env bash
# The docker-bridge fixture built the way shell harnesses do (iproute2 +
# iptables + ethtool, named namespaces), one ping across it, then torn down.
# The baseline `netrepro bench` compares itself with, doing the work the
# harness does: every sysctl of fixtures/docker-bridge.toml (12) before any
# link, offloads off on every veth end while it is down (`ethtool -K`, as
# the harness's SFEATURES call), the bridge, veths, addresses, route and
# iptables rule; the ping waits for carrier by itself (-W 1).
# Usage: docker-bridge.sh TAG
set -euo pipefail
t=${1:?tag}
h=nrb-$t-h c=nrb-$t-c e=nrb-$t-e
cleanup() { ip netns del "$h" 2>/dev/null || true; ip netns del "$c" 2>/dev/null || true; ip netns del "$e" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$h"
ip netns add "$c"
ip netns add "$e"
for n in "$h" "$c" "$e"; do ip -n "$n" link set lo up; done
ip netns exec "$h" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
	net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1 \
	net.ipv6.conf.default.disable_ipv6=1 net.ipv4.igmp_link_local_mcast_reports=0
for n in "$c" "$e"; do
	ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1
done
off() { ip netns exec "$1" ethtool -K "$2" rx off tx off sg off tso off gso off gro off >/dev/null; }
ip -n "$h" link add docker0 txqueuelen 0 type bridge
ip -n "$h" addr add 172.17.0.1/16 dev docker0
ip -n "$h" link set docker0 up
ip -n "$h" link add veth0 type veth peer name eth0 netns "$c"
off "$h" veth0
off "$c" eth0
ip -n "$h" link set veth0 master docker0 up
ip -n "$c" addr add 172.17.0.2/16 dev eth0
ip -n "$c" link set eth0 up
ip -n "$c" route add default via 172.17.0.1
ip -n "$h" link add eno1 type veth peer name eth0 netns "$e"
off "$h" eno1
off "$e" eth0
ip -n "$h" addr add 10.2.19.78/24 dev eno1
ip -n "$h" link set eno1 up
ip -n "$e" addr add 10.2.19.80/24 dev eth0
ip -n "$e" link set eth0 up
ip netns exec "$h" iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
ip netns exec "$c" ping -c 1 -W 1 -q 10.2.19.80 >/dev/null
