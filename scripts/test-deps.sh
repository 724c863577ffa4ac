#!/bin/sh
# test-deps.sh: make a Debian 12 machine ready for `make test`, which runs
# it first (and so does .ci/run, through make test). Idempotent: on a ready
# machine it only prints what it found.
#
#   - PostgreSQL (127.0.0.1:5432, database test) and MariaDB (127.0.0.1:3306):
#     the machine's own; started again if they are installed but stopped.
#   - Prosody, prosody-modules and ejabberd: scripts/xmpp-servers.sh ensure
#     (the installed generation, or Debian's own when none is).
#   - Chromium, for the test that renders /docs (api/docs_test.go),
#     systemd-analyze, for the checks of packaging/systemd, podman, curl
#     and ip, for the container image and the commands of docs/container.md
#     (packaging/container_test.go), curl for the README's walk-through
#     (cmd/p2http/readme_test.go), and promtool (Debian's prometheus
#     package), for the checks of contrib/prometheus: from Debian.
#
# Installing needs root; the system services never start (see lib.sh).
set -eu
# shellcheck disable=SC2034 # lib.sh's prefix of messages
NAME=test-deps
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# PostgreSQL: started by the machine; start it again if it stopped.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
	if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then
		say "starting PostgreSQL"
		# shellcheck disable=SC2012 # a version number
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
		for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	fi
fi
command -v pg_isready >/dev/null || die "PostgreSQL is not installed: the tests need one on 127.0.0.1:5432 (or P2_TEST_POSTGRES_URL)"
pg_isready -q -h 127.0.0.1 -p 5432 || [ -n "${P2_TEST_POSTGRES_URL:-}" ] ||
	die "PostgreSQL is not accepting connections on 127.0.0.1:5432"

# MariaDB: the same.
if [ -x /usr/sbin/mariadbd ] && ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		say "starting MariaDB"
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
		for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
	fi
fi

command -v mariadb-admin >/dev/null || die "MariaDB is not installed: the tests need one on 127.0.0.1:3306 (root, no password)"
mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 || die "MariaDB is not accepting connections on 127.0.0.1:3306"

sh "$(dirname "$0")/xmpp-servers.sh" ensure

missing() {
	need=""
	[ -x /usr/bin/chromium ] || need="$need chromium"
	command -v systemd-analyze >/dev/null || need="$need systemd"
	command -v podman >/dev/null || need="$need podman"
	command -v curl >/dev/null || need="$need curl"
	command -v ip >/dev/null || need="$need iproute2"
	command -v promtool >/dev/null || need="$need prometheus"
	echo "$need"
}
if [ -n "$(missing)" ]; then
	need_root "install$(missing)"
	install_lock
	need=$(missing)
	if [ -n "$need" ]; then
		say "installing$need"
		policy_on
		apt update -q >/dev/null
		# shellcheck disable=SC2086
		apt install -y -q --no-install-recommends $need >/dev/null
		policy_off
	fi
fi
[ -z "$(missing)" ] || die "still missing after apt-get install:$(missing)"
say "PostgreSQL, MariaDB, Prosody, ejabberd, Chromium, systemd-analyze, podman, curl, ip and promtool are ready"
