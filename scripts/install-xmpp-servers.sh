#!/bin/sh
# install-xmpp-servers.sh: install Debian's Prosody (with prosody-modules, for
# mod_cloud_notify) and ejabberd for the end-to-end tests that use
# internal/xmppserver, without letting the packages start their system
# services on the default ports.
#
# Idempotent: does nothing when everything is installed. Must run as root
# otherwise. Takes the same lock file as xmppserver.EnsureInstalled, so it is
# safe to run while tests install too.
set -eu

LOCK=/tmp/p2http-xmppserver-install.lock
POLICY=/usr/sbin/policy-rc.d

missing() {
	need=""
	{ [ -x /usr/bin/prosody ] && [ -x /usr/bin/prosodyctl ]; } || need="$need prosody"
	[ -f /usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua ] || need="$need prosody-modules"
	[ -x /usr/sbin/ejabberdctl ] || need="$need ejabberd"
	echo "$need"
}

need=$(missing)
if [ -z "$need" ]; then
	echo "install-xmpp-servers: prosody, prosody-modules and ejabberd are installed"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-xmpp-servers: must run as root to install:$need" >&2
	exit 1
fi

exec 9>"$LOCK"
flock 9
need=$(missing)
if [ -z "$need" ]; then
	echo "install-xmpp-servers: installed meanwhile by another process"
	exit 0
fi

# Keep the system services from starting during the install.
created_policy=0
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$POLICY"
	chmod 0755 "$POLICY"
	created_policy=1
fi
cleanup() {
	if [ "$created_policy" = 1 ]; then rm -f "$POLICY"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $need

# If a system service got started anyway, stop it: the tests run private
# instances and the default ports must stay free.
for pidfile in /run/prosody/prosody.pid /run/ejabberd/ejabberd.pid; do
	if [ -s "$pidfile" ]; then
		kill "$(cat "$pidfile")" 2>/dev/null || true
	fi
done

need=$(missing)
if [ -n "$need" ]; then
	echo "install-xmpp-servers: still missing after install:$need" >&2
	exit 1
fi
echo "install-xmpp-servers: done"
