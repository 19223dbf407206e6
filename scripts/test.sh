#!/usr/bin/env bash
# Everything CI checks, from a fresh machine: install, start the engine and a
# registry if none answers, then ruff, mypy, hadolint on every rendered
# Dockerfile, the drift check, the benchmark's quick mode and all tests
# (the end-to-end ones on the real engine and registry). Services this script
# started are stopped again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
# javac compiles the Java program an end-to-end test runs in a JRE image;
# docker-compose is what the benchmark compares the cold build + push with;
# gpg (with its agent) makes the OpenPGP keys that `invoke update`'s tests sign with.
need=()
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v gpg >/dev/null || need+=(gpg)
command -v gpg-agent >/dev/null || need+=(gpg-agent)
if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
STATE="${JAVABASE_STATE:-/var/tmp/javabase}"
# Stop at the end only what this run started (a developer's running engine stays).
before="$(scripts/services.sh status)"
scripts/services.sh start
cleanup=""
case "$before" in *"engine: up"*) ;; *) cleanup="scripts/services.sh stop-engine" ;; esac
case "$before" in *"registry: up"*) ;; *) cleanup="scripts/services.sh stop-registry; $cleanup" ;; esac
if [ -n "$cleanup" ]; then trap "$cleanup" EXIT; fi
eval "$(scripts/services.sh env)"

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy (strict on javabase/)"
.venv/bin/mypy
echo "== drift check and hadolint"
.venv/bin/invoke validate
.venv/bin/invoke render --check
.venv/bin/invoke lock --check
.venv/bin/invoke ci --check --format github --output ci/github-workflow.yml
.venv/bin/invoke ci --check --format gitlab --output ci/gitlab-ci.yml
.venv/bin/invoke ci --check --format github --job update --output ci/github-update.yml
.venv/bin/invoke ci --check --format gitlab --job update --output ci/gitlab-update.yml
.venv/bin/check-jsonschema --builtin-schema vendor.github-workflows ci/github-workflow.yml ci/github-update.yml
.venv/bin/check-jsonschema --builtin-schema vendor.gitlab-ci ci/gitlab-ci.yml ci/gitlab-update.yml
for dockerfile in builds/*/Dockerfile tests/data/golden/builds/*/Dockerfile; do
    .venv/bin/hadolint --config .hadolint.yaml "$dockerfile"
done
echo "== benchmark, quick mode (checks that it works; its figures mean nothing)"
.venv/bin/invoke bench --quick
echo "== pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider --durations=15 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit "$status"
