#!/bin/sh
# xmpp-servers.sh: the Prosody and ejabberd that the end-to-end tests run
# against, as one of two generations of Debian's packages:
#
#   release    the machine's own Debian suite. On Debian 12 (bookworm):
#              Prosody 0.12 with prosody-modules' mod_cloud_notify, ejabberd 23.01.
#   backports  SUITE-backports. On Debian 12 (bookworm-backports): Prosody 13
#              (mod_cloud_notify in core), ejabberd 24.12 — what Debian 13 ships.
#
# A generation is the packages' whole dependency closure from one suite:
# ejabberd 23.01 never runs on backports' erlang-p1-* libraries, and
# ejabberd 24.12 runs on all of them.
#
# Usage: xmpp-servers.sh [COMMAND]
#   ensure          (the default) keep the installed generation; install
#                   `release` when none is installed; print the versions
#   switch GEN      make GEN (release or backports) the installed generation,
#                   then print the versions; does nothing if it already is
#   installed       print the installed generation: release, backports,
#                   mixed or none
#   versions        print the generation and the versions of its packages
#
# Installing needs root. The system services never start: a policy-rc.d
# refuses them during the install, and any that started anyway is stopped.
# A switch waits until no test binary uses the servers (they hold
# USE_LOCK shared, see internal/xmppserver), and installs under the same lock
# as xmppserver.EnsureInstalled; so packages never change under a running
# test.
set -eu

# shellcheck disable=SC2034 # lib.sh's prefix of messages
NAME=xmpp-servers
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

PACKAGES="prosody prosody-modules ejabberd"
USE_LOCK=/tmp/p2http-xmppserver-use.lock
SOURCES=/etc/apt/sources.list.d/p2http-backports.sources

codename() {
	# In a subshell: os-release's NAME would replace lib.sh's.
	# shellcheck disable=SC1091
	c=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$c" ] || die "no VERSION_CODENAME in /etc/os-release"
	echo "$c"
}

# suite GEN: the Debian suite a generation comes from.
suite() {
	case "$1" in
	release) codename ;;
	backports) echo "$(codename)-backports" ;;
	*) die "unknown generation '$1' (want release or backports)" ;;
	esac
}

# closure: the installed packages that the servers need, recursively.
closure() {
	# shellcheck disable=SC2086
	apt-cache depends --recurse --installed --no-recommends --no-suggests \
		--no-conflicts --no-breaks --no-replaces --no-enhances $PACKAGES 2>/dev/null |
		grep -v '^ ' | grep -v '^<' | sort -u
}

# installed: which generation the three packages are from. Backports'
# versions carry ~bpo, by Debian's backports policy.
installed() {
	n=0
	bpo=0
	for p in $PACKAGES; do
		v=$(version "$p")
		[ -n "$v" ] || continue
		n=$((n + 1))
		case "$v" in *~bpo*) bpo=$((bpo + 1)) ;; esac
	done
	if [ "$n" = 0 ]; then
		echo none
	elif [ "$n" -lt 3 ]; then
		echo mixed
	elif [ "$bpo" = 0 ]; then
		echo release
	elif [ "$bpo" = 3 ]; then
		echo backports
	else
		echo mixed
	fi
}

versions() {
	gen=$(installed)
	line="generation $gen"
	case "$gen" in release | backports) line="$line ($(suite "$gen"))" ;; esac
	for p in prosody prosody-modules ejabberd erlang-p1-xmpp; do
		line="$line, $p $(version "$p")"
	done
	say "$line"
}

# check GEN: fail unless the whole closure is from GEN's suite.
check() {
	gen=$1
	[ "$(installed)" = "$gen" ] || die "installed generation is $(installed), not $gen"
	# Prosody needs mod_cloud_notify in one of its two layouts.
	has_cloud_notify ||
		die "mod_cloud_notify is in neither /usr/lib/prosody/modules/mod_cloud_notify.lua (Prosody 13) nor /usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua (prosody-modules for 0.12)"
	pkgs=$(closure)
	case "$gen" in
	release)
		wrong=$(for p in $pkgs; do
			case "$(version "$p")" in *~bpo*) echo "$p=$(version "$p")" ;; esac
		done)
		;;
	backports)
		# Any package of the closure that backports has in a newer version
		# than the one installed.
		# shellcheck disable=SC2086
		wrong=$(apt-get install -s -q --no-install-recommends -t "$(suite backports)" $pkgs 2>/dev/null |
			sed -n 's/^Inst \([^ ]*\) .*(\([^ ]*~bpo[^ ]*\) .*/\1 (backports has \2)/p')
		;;
	esac
	[ -z "$wrong" ] || die "generation $gen has packages from another suite: $(echo "$wrong" | tr "\n" " ")"
}

# add_backports: a sources file for SUITE-backports, on the mirror of the
# machine's own sources. apt gives backports priority 100, so nothing comes
# from it unless asked for with -t.
add_backports() {
	if [ -f "$SOURCES" ] || apt-cache policy 2>/dev/null | grep -q " $(suite backports)/"; then
		return
	fi
	mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1)
	if [ -z "$mirror" ]; then
		mirror=$(sed -n 's/^deb  *\(\[[^]]*\] *\)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1)
	fi
	[ -n "$mirror" ] || die "cannot find the machine's Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
	say "adding $(suite backports) from $mirror in $SOURCES"
	cat >"$SOURCES" <<EOF
# Added by p2http's scripts/xmpp-servers.sh for the end-to-end tests.
Types: deb
URIs: $mirror
Suites: $(suite backports)
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

stop_system_services() {
	for pidfile in /run/prosody/prosody.pid /run/ejabberd/ejabberd.pid; do
		if [ -s "$pidfile" ]; then
			kill "$(cat "$pidfile")" 2>/dev/null || true
		fi
	done
}

# install GEN [purge]: install GEN's closure; with purge, first remove what
# is installed of another generation, with the dependencies apt installed
# for it.
install_gen() {
	gen=$1
	need_root "install the $gen generation of $PACKAGES"
	policy_on
	add_backports
	apt update -q >/dev/null
	now=$(installed)
	if [ "${2:-}" = purge ] && [ "$now" != none ]; then
		top=$(for p in $PACKAGES; do [ -z "$(version "$p")" ] || echo "$p"; done)
		# --auto-remove takes the dependencies apt installed for them.
		# shellcheck disable=SC2086
		gone=$(apt-get -s purge --auto-remove $top | sed -n 's/^Purg \([^ ]*\).*/\1/p' | tr '\n' ' ')
		# shellcheck disable=SC2086
		apt purge -y -q --auto-remove $top >/dev/null
		say "removed generation $now: $gone"
	fi
	say "installing generation $gen from $(suite "$gen")"
	target=""
	[ "$gen" = release ] || target="-t $(suite backports)"
	# shellcheck disable=SC2086
	apt install -y -q --no-install-recommends $target $PACKAGES >/dev/null
	stop_system_services
	policy_off
	check "$gen"
}

has_cloud_notify() {
	[ -f /usr/lib/prosody/modules/mod_cloud_notify.lua ] ||
		[ -f /usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua ]
}

# ensure_gen: the generation to complete what is installed with, or nothing
# when everything is there.
ensure_gen() {
	gen=$(installed)
	case "$gen" in
	release | backports) has_cloud_notify || echo "$gen" ;;
	none) echo release ;;
	mixed)
		# Some of the packages are missing: complete them from the suite
		# of those that are there.
		bpo=0
		for p in $PACKAGES; do
			case "$(version "$p")" in *~bpo*) bpo=1 ;; esac
		done
		if [ "$bpo" = 1 ]; then echo backports; else echo release; fi
		;;
	esac
}

ensure() {
	if [ -n "$(ensure_gen)" ]; then
		need_root "install $PACKAGES"
		# Only adds packages, so the test binaries using the servers
		# need not have finished: the install lock alone.
		install_lock
		gen=$(ensure_gen)
		if [ -n "$gen" ]; then
			install_gen "$gen"
		fi
	fi
	versions
}

# switch GEN: make GEN the installed generation, holding the use lock
# exclusively (no test binary is using the servers) and then the install
# lock, in the order the test binaries take them.
switch() {
	gen=$1
	suite "$gen" >/dev/null
	if [ "$(installed)" = "$gen" ] && (check "$gen") 2>/dev/null; then
		versions
		return
	fi
	need_root "switch to the $gen generation of $PACKAGES"
	exec 8>"$USE_LOCK"
	if ! flock -n 8; then
		say "waiting for the test binaries that use the XMPP servers to finish"
		flock -w 1800 8 || die "a test binary still uses the XMPP servers after 30 minutes"
	fi
	install_lock
	install_gen "$gen" purge
	versions
}

case "${1:-ensure}" in
ensure) ensure ;;
switch)
	[ $# = 2 ] || die "usage: xmpp-servers.sh switch release|backports"
	switch "$2"
	;;
installed) installed ;;
versions) versions ;;
-h | --help | help) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
*) die "unknown command '$1' (see xmpp-servers.sh --help)" ;;
esac
