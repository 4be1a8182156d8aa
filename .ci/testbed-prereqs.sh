#!/usr/bin/env bash
# Prepare this machine for the test bed (tests/testbed, docs/testing.md): install the Debian
# packages it needs, build or reuse the cached rootfs, and boot one probe host to prove that
# hosts run here. Idempotent; run as root on a Debian machine (CI calls it from .ci/run).
set -euo pipefail

die() {
    echo "testbed-prereqs: $*" >&2
    exit 1
}

packages=(
    apt-cacher-ng ca-certificates debootstrap iproute2 openssh-client python3 rsync
    systemd-container tar util-linux zstd
)
# `--packages`: print them (scripts/test.sh installs them with its own in one apt-get).
if [ "${1:-}" = "--packages" ]; then
    echo "${packages[@]}"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (the test bed makes namespaces and containers)"
[ -r /etc/debian_version ] || die "needs a Debian machine (debootstrap, systemd-container)"
cd "$(dirname "$0")/.."

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "testbed-prereqs: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
fi

# The test bed is standard-library Python: any python3 runs it (scripts/test.sh passes the
# system's while it is still making the venv).
python=${FSOCI_PREREQS_PYTHON:-python3}
[ -z "${FSOCI_PREREQS_PYTHON:-}" ] && [ -x .venv/bin/python ] && python=.venv/bin/python

echo "testbed-prereqs: rootfs cache"
"$python" -m tests.testbed build || die "building the test-host rootfs failed (see above)"

probe="ci-probe-$$"
trap '"$python" -m tests.testbed down "$probe" >/dev/null 2>&1 || true' EXIT
echo "testbed-prereqs: booting probe host $probe"
"$python" -m tests.testbed up "$probe" || die "a test host did not boot (see above)"
state=$("$python" -m tests.testbed ssh "$probe" systemctl is-system-running --wait || true)
case "$state" in
    running | degraded) ;;
    *) die "the probe host's systemd is '$state', not running" ;;
esac
"$python" -m tests.testbed down "$probe" || die "removing the probe host failed"
trap - EXIT
echo "testbed-prereqs: ok"
