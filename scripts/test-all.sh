#!/usr/bin/env bash
# The README's second command: install everything the tests need, build, and run every test.
# Debian packages come from apt-get when running as root (or with passwordless sudo); otherwise the
# script names what is missing and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(softhsm2 opensc swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0 openssl systemd libengine-pkcs11-openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "error: the tests need these Debian packages: ${missing[*]}" >&2
    echo "  install them as root:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "==> installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# `npm install` from the lock file, not `npm ci`: npm 11's ci refuses this lock because optional
# platform packages of jco, componentize-js and rolldown (win32, darwin, musl, …) are absent from it.
echo "==> npm install (from package-lock.json)"
npm install --no-audit --no-fund
# The official TPM security client, apart and without install scripts (its ffi-napi does not build on
# Node 20 and is Windows-only there): the tests use it to check the DPS fixture's TPM attestation.
(cd test/sdk-tpm && npm install --ignore-scripts --no-audit --no-fund)
echo "==> type check (sources, tests, benches) and build"
npm run typecheck
npm run build
if npm run | grep -q '^  build:guests$'; then
  echo "==> building sample guests"
  npm run build:guests
fi

echo "==> tests"
mkdir -p .cache
rm -f .cache/reliability.jsonl   # the reliability table of this run only
set +e
# --retry=1: a test that fails once and then passes does not fail the run, but the summary below names it
# (with its first error) as flaky, so it is seen and fixed rather than hidden.
npx vitest run --retry=1 --reporter=default --reporter=json --outputFile.json=.cache/vitest.json
rc=$?
set -e
echo "==> reliability scenarios (figures measured in this run)"
node scripts/reliability-table.mjs || rc=1
# The totals and every failure last, where the tail of a long log shows them.
node scripts/test-summary.mjs || rc=1
exit $rc
