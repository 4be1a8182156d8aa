#!/usr/bin/env bash
# The whole test suite: linters, type checks, unit tests, the test-bed tests (booted Debian
# hosts, Molecule scenarios, end-to-end runs) and the wheel test.
#
# As root on Debian it first installs the system packages the test bed needs (debootstrap,
# systemd-container, apt-cacher-ng, ...) and builds or reuses the cached host image. Extra
# arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -x`.
#
# `--quick` (first argument) is the inner loop: ruff, mypy, then the unit tests and the OCI-double
# tests (no test-bed host, no Faceswap install, nothing marked slow); docs/testing.md lists the
# tiers and their times.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
quick=false
# The quick lane's tests, on four workers: most of their time is spent waiting (Ansible's
# start-up, the SDK's retry back-off, the OCI double's simulated delays, SSH time-outs), so four
# fill two cores; worksteal keeps one worker from ending last with a queue of long tests (a
# module-wide fixture is made once per worker).
quick_tests=(-m "not testbed and not faceswap and not slow" -n 4 --dist worksteal)
if [ "${1:-}" = "--quick" ]; then
  quick=true
  shift
fi

python=""
for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "error: faceswap-oci needs Python 3.11, 3.12 or 3.13 (none found on PATH)" >&2
  exit 1
fi

# The venv: --no-compile, since byte-compiling every module of the oci SDK and ansible-core costs
# ~20 s of CPU; Python compiles the few that are imported when they first are.
make_venv() {
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv || return
  fi
  .venv/bin/python -m pip install -q --upgrade pip &&
    .venv/bin/python -m pip install -q --no-compile -e '.[test]'
}

# Run a step in the background, its output kept for later; `finish NAME` waits for it, prints
# its output under a heading and returns its exit status (0 for a step never started).
declare -A step_pid step_log
start() {
  local name=$1
  shift
  step_log[$name]=$(mktemp)
  "$@" >"${step_log[$name]}" 2>&1 &
  step_pid[$name]=$!
}
finish() {
  local name=$1 rc=0
  [ -n "${step_pid[$name]:-}" ] || return 0
  wait "${step_pid[$name]}" || rc=$?
  echo "== $name"
  cat "${step_log[$name]}"
  rm -f "${step_log[$name]}"
  unset "step_pid[$name]"
  [ "$rc" -eq 0 ] || echo "error: $name failed (exit $rc)" >&2
  return "$rc"
}

if [ "$quick" = false ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # Where the chosen Python can make a venv by itself, pip fills it while apt installs.
  if "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    start "venv" make_venv
  fi
  # One apt-get for the controller's own tools (ffmpeg/ffprobe for demo clips and output checks,
  # git for the source cache, rsync and ssh for upload and fetch, Tk and venv for the `local`
  # target's Faceswap, chromium and chromium-driver for the dashboard's browser test) and the
  # test bed's packages.
  need=()
  for pkg in ffmpeg git rsync openssh-client python3-tk python3-venv chromium chromium-driver \
    $(bash .ci/testbed-prereqs.sh --packages); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
  # The test bed's root filesystem and probe host (mostly downloads and decompression), made
  # while the tests that need no test host already run; the test bed is standard-library
  # Python, so it runs on the Python found above, not on the venv being made.
  start "test-bed prerequisites" env FSOCI_PREREQS_PYTHON="$python" bash .ci/testbed-prereqs.sh
elif [ "$quick" = false ]; then
  echo "note: not root (or not Debian): the test-bed tests will skip unless the host image and packages are already there" >&2
fi
if [ -n "${step_pid[venv]:-}" ]; then
  finish "venv" || exit
else
  make_venv
fi
export PATH="$PWD/.venv/bin:$PATH"

# The installed-host image (tests/hostimage.py) is kept between runs while nothing it is made
# from changed (its name hashes the Faceswap commit, the requirements, the roles and playbooks
# that install it and the rootfs): a run makes it again only after such a change, and the
# local target's install (tests/faceswap/local.py) still installs Faceswap for real each run.
export FSOCI_TESTBED_REUSE_LAYERS="${FSOCI_TESTBED_REUSE_LAYERS:-1}"

# On CI a machine that can run the test hosts must run them: skipping counts as a failure.
if [ "${CI:-}" = "true" ]; then
  export FSOCI_REQUIRE_TESTBED=1
fi

echo "== ruff"
ruff check .
ruff format --check .
pytest_args=(-ra -p no:cacheprovider --durations=25)
# One pytest session: its report, then its own time; collecting no test (exit 5) is a failure.
session() {
  local began=$SECONDS rc=0
  python -m pytest "${pytest_args[@]}" "$@" || rc=$?
  # `times`' second line: the CPU of the processes this shell waited for (pytest and what it
  # waited for; not the test hosts' own processes, which the test bed's systemd runs)
  local cpu
  cpu=$(mktemp)
  times >"$cpu"
  echo "(this session: $((SECONDS - began)) s; CPU user, system: $(tail -1 "$cpu"))"
  rm -f "$cpu"
  if [ "$rc" -eq 5 ]; then
    echo "error: a pytest session collected no tests; that is a failure" >&2
    rc=1
  fi
  return "$rc"
}

if [ "$quick" = true ]; then
  echo "== mypy --strict"
  mypy
  set -- "${quick_tests[@]}" "$@"
else
  # mypy and ansible-lint (a minute of CPU) run beside pytest; their reports follow pytest's.
  start "mypy --strict" mypy
  start "ansible-lint (production profile)" ansible-lint
fi
status=0
if [ "$quick" = false ] && [ "$#" -eq 0 ]; then
  # Five pytest sessions side by side: much of the tests' time is spent waiting (SSH round
  # trips, Ansible's start-up, downloads, the OCI double's simulated delays, a VM's link down),
  # so five fill two cores better than fewer:
  #   - the quick lane's tests (unit, OCI double), on its workers;
  #   - the local Faceswap install and the pipeline on it, and the other slow tests (the
  #     wheel's fresh venv, ansible-test sanity);
  #   - the e2e job and what reuses it (the installed-host image, then one whole job and its
  #     changed-input re-runs, and the dashboard serving it): the longest chain, alone;
  #   - the OCI job (tests/oci/test_oci_job.py): one job on the OCI double whose VMs are
  #     test-bed hosts booted from the image, a chain of minutes, most of it waiting;
  #   - the other test-bed tests (booted hosts, Molecule, the ssh target): those on the image
  #     run last (tests/conftest.py), once the e2e session has built it.
  # Each makes its own shared installs once, the image is built once between them (a file
  # lock); their reports follow one another. The two without test hosts start at once, the
  # three with them once the test bed is ready.
  start "pytest (quick)" session "${quick_tests[@]}"
  start "pytest (local)" session -m "not testbed and (faceswap or slow)"
  finish "test-bed prerequisites" || exit
  start "pytest (e2e job)" session -m "testbed or slow" tests/dashboard tests/e2e
  start "pytest (oci job)" session -m testbed tests/oci/test_oci_job.py
  start "pytest (test-bed)" session -m testbed --ignore=tests/dashboard --ignore=tests/e2e \
    --ignore=tests/oci/test_oci_job.py
  for name in quick local "e2e job" "oci job" test-bed; do
    finish "pytest ($name)" || status=$?
  done
else
  finish "test-bed prerequisites" || exit
  echo "== pytest"
  session "$@" || status=$?
fi
for step in "mypy --strict" "ansible-lint (production profile)"; do
  rc=0
  finish "$step" || rc=$?
  [ "$status" -ne 0 ] || status=$rc
done
echo "== $( [ "$quick" = true ] && echo quick lane || echo test suite ): $((SECONDS - started)) s in all"
exit "$status"
