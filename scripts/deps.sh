#!/bin/sh
# Installs the Debian packages VIRGO needs to build, test and demo (with
# --bench: and to benchmark), if any is missing (uses sudo when not root).
# Safe to run repeatedly.
set -e
PKGS="build-essential pkg-config libevent-dev libinih-dev libssl-dev libcmocka-dev netcat-openbsd libmemcached-tools libmemcached-dev python3 iproute2 nftables libfuse3-dev fuse3 libzookeeper-mt-dev rsync graphviz sqlite3 liburing-dev"
# make bench also compares against peers measured in the same run
[ "${1:-}" = "--bench" ] && PKGS="$PKGS memcached gnuplot-nox redis-server redis-tools sshfs openssh-server"
# make test-cloudsync-zk: a ZooKeeper server to test cloudsync's zookeeper backend
[ "${1:-}" = "--zk" ] && PKGS="$PKGS zookeeperd"
# cloudsync's peers: the usual single-instance Redis lock, and ZooKeeper's recipe
[ "${1:-}" = "--bench" ] && PKGS="$PKGS zookeeperd"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
