#!/usr/bin/env bash
# The main job, end to end on this machine with no internet: install javabase,
# start a Docker engine and a registry on $JAVABASE_REGISTRY_ADDR (default
# 127.0.0.1:5000; if none answers), prepare the offline example (for
# linux/amd64 and linux/arm64) in $JAVABASE_STATE/example, serve its JRE
# tarballs over HTTP on 127.0.0.1:$JAVABASE_EXAMPLE_PORT (default 8780), and run
# `invoke build-all --push` against the local registry. The engine, the
# registry and the file server keep running: `scripts/services.sh stop` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
scripts/services.sh start
eval "$(scripts/services.sh env)"

STATE="${JAVABASE_STATE:-/var/tmp/javabase}"
WORK="$STATE/example"
PORT="${JAVABASE_EXAMPLE_PORT:-8780}"
.venv/bin/python examples/offline/prepare.py --out "$WORK" --base-url "http://127.0.0.1:$PORT" --arm64
scripts/services.sh serve-example

.venv/bin/invoke build-all --push --manifest "$WORK/images.yaml" --registry "$JAVABASE_REGISTRY" \
    --report "$WORK/report.json" "$@"

echo
echo "The example's images are in the registry at http://$JAVABASE_REGISTRY:"
for repo in $(curl -sf "http://$JAVABASE_REGISTRY/v2/_catalog?n=1000" | .venv/bin/python -c \
        'import json,sys; print(" ".join(r for r in json.load(sys.stdin)["repositories"] if r.startswith("example/")))'); do
    tags=$(curl -sf "http://$JAVABASE_REGISTRY/v2/$repo/tags/list" | .venv/bin/python -c \
        'import json,sys; print(", ".join(sorted(t for t in json.load(sys.stdin)["tags"] or []
                                         if not t.startswith("sha256-"))))')  # not cosign's signature tags
    echo "  $JAVABASE_REGISTRY/$repo: $tags"
done
echo "Report: $WORK/report.json. Manifest: $WORK/images.yaml (its files are served on http://127.0.0.1:$PORT)."
echo "Try (the other platform, by the reference javabase keeps for it in this engine; no tag moves):"
echo "  DOCKER_HOST=$DOCKER_HOST $(.venv/bin/python examples/offline/hint.py "$WORK/report.json")"
echo "Stop the engine, the registry and the file server with: scripts/services.sh stop"
