#!/usr/bin/env bash
# Installs every Debian package Trellis' tests, lab and benchmarks need. Idempotent; run as root.
#   iproute2, nftables, conntrack   kernel plumbing the lab and tests drive (ip netns, nft -f)
#   containerd, runc                 a real CNI client: tests start containers with `ctr run --cni`
#   iptables                         used by the reference portmap plugin chained after trellis-cni in tests
#   ipset                            the Calico-style iptables+ipset peer of bench/Trellis.Bench.Policy
#   containernetworking-plugins      the reference plugins: portmap/bandwidth for chaining, bridge+host-local as the benchmark peer, loopback for containerd
#   busybox-static                   the rootfs of the tiny OCI image the containerd test builds on the fly
#   etcd-server, etcd-client         the etcd cluster store backend: tests start real members; etcdctl to inspect one
#   util-linux, procps               unshare/nsenter, ps
#   time                             GNU time: peak RSS of plugin processes in bench/
#   iputils-ping, iperf3             ICMP across nodes in the lab tests; throughput in bench/
#   bird2, frr, gobgpd, tcpdump      real BGP routers the Trellis.Bgp interop tests peer with; tcpdump to capture test data
#   bind9-dnsutils                   dig: the DNS tests query trellis-dns with it
#   dnsperf, knot                    the DNS benchmark's load generator, and knotd as its peer server
set -euo pipefail
packages=(time iputils-ping iperf3 iproute2 iptables ipset nftables conntrack containerd runc containernetworking-plugins busybox-static etcd-server etcd-client util-linux procps bird2 frr gobgpd tcpdump bind9-dnsutils dnsperf knot)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
