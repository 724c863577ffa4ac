# lib.sh: what scripts/xmpp-servers.sh and scripts/test-deps.sh share, to be
# sourced after setting NAME (the prefix of messages).
#
# Installs keep Debian's maintainer scripts from starting system services (a
# policy-rc.d exiting 101, removed afterwards if we created it): the tests
# run private instances, and the default ports must stay free.

INSTALL_LOCK=/tmp/p2http-xmppserver-install.lock
POLICY=/usr/sbin/policy-rc.d

say() { echo "$NAME: $*"; }
die() {
	echo "$NAME: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root to $*"
}

created_policy=0
policy_on() {
	if [ ! -e "$POLICY" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$POLICY"
		chmod 0755 "$POLICY"
		created_policy=1
		trap policy_off EXIT
		trap 'exit 130' INT TERM
	fi
}
policy_off() {
	if [ "$created_policy" = 1 ]; then rm -f "$POLICY"; fi
	created_policy=0
}

apt() {
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"
}

# install_lock: hold the lock that installs by the scripts and the test
# binaries take, on file descriptor 9, until the script exits.
install_lock() {
	exec 9>"$INSTALL_LOCK"
	flock 9
}

version() { dpkg-query -W -f '${db:Status-Abbrev}${Version}' "$1" 2>/dev/null | sed -n 's/^ii *//p'; }
