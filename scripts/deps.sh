#!/bin/sh
# Installs the Debian packages VIRGO needs to build, test and demo (with
# --bench: and to benchmark), if any is missing (uses sudo when not root).
# Safe to run repeatedly.
set -e
PKGS="build-essential pkg-config libevent-dev libinih-dev libssl-dev libcmocka-dev netcat-openbsd libmemcached-tools libmemcached-dev python3 graphviz"
# make bench also compares against peers measured in the same run
[ "${1:-}" = "--bench" ] && PKGS="$PKGS memcached gnuplot-nox"
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
