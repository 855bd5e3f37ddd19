#!/usr/bin/env bash
# The steps of github-actions.yml (next to this file), in order, as one script: run it from your project's root.
#
#   QIWI_TOOLKIT=./dist/qiwi_bill_toolkit-0.2.0-py3-none-any.whl[contract] examples/ci/run-ci.sh
#
# Each `run:` of the workflow is copied here word for word (a test in the toolkit checks it). What GitHub Actions
# does between steps is done by the `between_steps` function: variables a step appends to $GITHUB_ENV are
# exported to the next ones. The JUnit report ends up in reports/qiwi-contract.xml, where the workflow uploads it.
set -euo pipefail

: "${QIWI_TOOLKIT:=qiwi-bill-toolkit[contract]}"
: "${QIWI_SECRET_KEY:=ci-secret-key}"
: "${USER_TESTS:=python -m pytest -q}"
export QIWI_TOOLKIT QIWI_SECRET_KEY USER_TESTS
GITHUB_ENV="${GITHUB_ENV:-$(mktemp)}"
export GITHUB_ENV

between_steps() {
    set -a
    # shellcheck disable=SC1090
    . "$GITHUB_ENV"
    set +a
}
# The workflow's last step ("Stop the mock", if: always()) as a trap, so it runs even when a step fails.
stop_the_mock() {
    between_steps
    kill "$QIWI_MOCK_PID" 2>/dev/null || true
}
trap stop_the_mock EXIT

echo "==> Install the toolkit"
python -m pip install "$QIWI_TOOLKIT" pytest
between_steps

echo "==> Start qiwi-bill-mock in the background"
QIWI_MOCK_SECRET_KEY="$QIWI_SECRET_KEY" nohup qiwi-bill-mock --port 0 > qiwi-bill-mock.log 2>&1 &
echo "QIWI_MOCK_PID=$!" >> "$GITHUB_ENV"
# Its first line is "qiwi-bill-mock listening on http://127.0.0.1:PORT" (--port 0 picked a free port).
for _ in $(seq 100); do grep -q "listening on" qiwi-bill-mock.log && break; sleep 0.1; done
url=$(sed -n 's/^qiwi-bill-mock listening on //p' qiwi-bill-mock.log | head -n 1)
test -n "$url" || { cat qiwi-bill-mock.log; exit 1; }
echo "QIWI_BASE_URL=$url" >> "$GITHUB_ENV"
between_steps

echo "==> Run your tests against the mock"
$USER_TESTS
between_steps

echo "==> Run the contract suite against the mock"
qiwi-contract --base-url "$QIWI_BASE_URL" --junit-xml reports/qiwi-contract.xml
between_steps

echo "==> Upload the contract report: reports/qiwi-contract.xml"
