#!/usr/bin/env bash
# The main job, end to end on this machine with no internet: install javabase,
# start a Docker engine and a registry on 127.0.0.1:5000 (if none answers),
# prepare the offline example (for linux/amd64 and linux/arm64), serve its JRE
# tarballs over HTTP on 127.0.0.1, and run `invoke build-all --push` against
# the local registry.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
scripts/services.sh start
eval "$(scripts/services.sh env)"

STATE="${JAVABASE_STATE:-/var/tmp/javabase}"
WORK="$STATE/example"
PORT="${JAVABASE_EXAMPLE_PORT:-8780}"
.venv/bin/python examples/offline/prepare.py --out "$WORK" --base-url "http://127.0.0.1:$PORT" --arm64

.venv/bin/python -m http.server --bind 127.0.0.1 --directory "$WORK/files" "$PORT" \
    >"$STATE/example-http.log" 2>&1 &
HTTP_PID=$!
trap 'kill "$HTTP_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 40); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break
    kill -0 "$HTTP_PID" 2>/dev/null || { echo "example: the HTTP server on 127.0.0.1:$PORT did not start:" >&2;
                                          cat "$STATE/example-http.log" >&2; exit 1; }
    sleep 0.25
done

.venv/bin/invoke build-all --push --manifest "$WORK/images.yaml" --registry "$JAVABASE_REGISTRY" \
    --report "$WORK/report.json" "$@"

echo
echo "The example's images are in the registry at http://$JAVABASE_REGISTRY:"
for repo in $(curl -sf "http://$JAVABASE_REGISTRY/v2/_catalog?n=1000" | .venv/bin/python -c \
        'import json,sys; print(" ".join(r for r in json.load(sys.stdin)["repositories"] if r.startswith("example/")))'); do
    tags=$(curl -sf "http://$JAVABASE_REGISTRY/v2/$repo/tags/list" | .venv/bin/python -c \
        'import json,sys; print(", ".join(sorted(json.load(sys.stdin)["tags"] or [])))')
    echo "  $JAVABASE_REGISTRY/$repo: $tags"
done
echo "Report: $WORK/report.json. Try: DOCKER_HOST=$DOCKER_HOST docker run --rm --platform linux/arm64 $JAVABASE_REGISTRY/example/app-base:1 java -version"
echo "Stop the engine and registry with: scripts/services.sh stop"
