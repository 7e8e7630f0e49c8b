#!/usr/bin/env bash
# `npm run test:reliability`: every test file that reports a reliability scenario, then the table of the
# figures this run measured (scripts/reliability-table.mjs). The README's test command runs them too.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
rm -f .cache/reliability.jsonl
mapfile -t files < <(grep -rl --include='*.test.ts' "helpers/reliability.js" test host hsm | sort)
set +e
npx vitest run "${files[@]}"
rc=$?
set -e
node scripts/reliability-table.mjs || rc=1
exit $rc
