#!/usr/bin/env bash
# Start, stop or show the local Docker engine and Distribution registry that
# javabase builds and pushes against, and the offline example's file server.
# Idempotent: `start` reuses what already answers and only starts what is
# missing; `stop` stops only what it started, by the pid files it wrote.
#
#   scripts/services.sh start|stop|stop-engine|stop-registry|serve-example|stop-example|status|env
#
# It reads (each user of a shared host sets their own):
#   JAVABASE_STATE          where the engine, registry and example keep their data (default /var/tmp/javabase)
#   JAVABASE_REGISTRY_ADDR  the registry's address (default 127.0.0.1:5000)
#   JAVABASE_EXAMPLE_PORT   the example's file server port on 127.0.0.1 (default 8780)
# `env` prints the export lines for DOCKER_HOST and JAVABASE_REGISTRY.
# `serve-example` serves $JAVABASE_STATE/example/files (what scripts/example.sh
# prepared) again, so that a change to the example that needs a download works.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

STATE="${JAVABASE_STATE:-/var/tmp/javabase}"
REGISTRY_ADDR="${JAVABASE_REGISTRY_ADDR:-127.0.0.1:5000}"
EXAMPLE_PORT="${JAVABASE_EXAMPLE_PORT:-8780}"
SOCK="$STATE/docker.sock"
FILES="$STATE/example/files"
USAGE="usage: scripts/services.sh start|stop|stop-engine|stop-registry|serve-example|stop-example|status|env
reads JAVABASE_STATE (default /var/tmp/javabase; now $STATE), JAVABASE_REGISTRY_ADDR (default 127.0.0.1:5000; now $REGISTRY_ADDR), JAVABASE_EXAMPLE_PORT (default 8780; now $EXAMPLE_PORT)"

log() { printf 'services: %s\n' "$*" >&2; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io containerd runc)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v curl >/dev/null || missing+=(curl ca-certificates)
    [ -x /bin/busybox ] || missing+=(busybox-static)
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} from Debian's archive"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    enable_arm64
}

enable_arm64() {
    # linux/arm64 images: RUN steps under qemu (binfmt_misc with the F flag, so
    # containers use the host's emulator), and Debian's arm64 packages for the
    # offline example's arm64 root.
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "adding Debian's arm64 architecture (for the offline example's arm64 root)"
        dpkg --add-architecture arm64
        apt-get update -qq
    fi
}

engine_up() {
    # The engine answers on its socket: /_ping returns OK.
    [ -S "$SOCK" ] && curl -sf --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
}

registry_up() {
    curl -sf --max-time 2 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1
}

wait_for() {
    local what="$1" check="$2" log_file="$3"
    for _ in $(seq 1 120); do
        if "$check"; then return 0; fi
        sleep 0.25
    done
    log "$what did not become ready in 30 s; its log says:"
    tail -n 20 "$log_file" >&2 || true
    return 1
}

start_engine() {
    if engine_up; then log "engine already answers on unix://$SOCK"; return 0; fi
    mkdir -p "$STATE/docker" "$STATE/exec"
    # A stale pid file from a killed engine would make dockerd refuse to start.
    rm -f "$STATE/dockerd.pid"
    log "starting dockerd (no container network: --bridge=none --iptables=false)"
    setsid dockerd --data-root "$STATE/docker" --exec-root "$STATE/exec" \
        --pidfile "$STATE/dockerd.pid" -H "unix://$SOCK" \
        --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
        >"$STATE/dockerd.log" 2>&1 < /dev/null &
    echo $! >"$STATE/dockerd.started"
    wait_for "dockerd" engine_up "$STATE/dockerd.log"
}

start_registry() {
    if registry_up; then log "registry already answers on http://$REGISTRY_ADDR"; return 0; fi
    mkdir -p "$STATE/registry"
    cat >"$STATE/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $STATE/registry}, delete: {enabled: true}}
http: {addr: $REGISTRY_ADDR}
YML
    log "starting the Distribution registry on $REGISTRY_ADDR"
    setsid docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 < /dev/null &
    echo $! >"$STATE/registry.pid"
    wait_for "registry" registry_up "$STATE/registry.log"
}

files_up() {
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$EXAMPLE_PORT/" 2>/dev/null
}

ours_running() {
    # The process a pid file names is alive (a pid file of a killed server is stale).
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

serve_example() {
    # The offline example's files (JRE tarballs), over HTTP on 127.0.0.1 only.
    if [ ! -d "$FILES" ]; then
        log "no example files in $FILES: scripts/example.sh prepares them (with JAVABASE_STATE=$STATE)"
        return 1
    fi
    if ours_running "$STATE/example-http.pid" && files_up; then
        log "the example's files are already served on http://127.0.0.1:$EXAMPLE_PORT"
        return 0
    fi
    if files_up; then
        log "127.0.0.1:$EXAMPLE_PORT answers, but not with a server of $STATE; set JAVABASE_EXAMPLE_PORT to a free port"
        return 1
    fi
    local python=python3
    [ -x "$ROOT/.venv/bin/python" ] && python="$ROOT/.venv/bin/python"
    log "serving $FILES on http://127.0.0.1:$EXAMPLE_PORT"
    setsid "$python" -m http.server --bind 127.0.0.1 --directory "$FILES" "$EXAMPLE_PORT" \
        >"$STATE/example-http.log" 2>&1 < /dev/null &
    echo $! >"$STATE/example-http.pid"
    wait_for "the example's file server" files_up "$STATE/example-http.log"
}

stop_pid_file() {
    local name="$1" file="$2"
    if [ -f "$file" ]; then
        local pid
        pid="$(cat "$file")"
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping $name (pid $pid)"
            kill "$pid"
            for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$file"
    fi
}

case "${1:-}" in
    start)
        install_packages
        mkdir -p "$STATE"
        start_engine
        start_registry
        ;;
    stop)
        stop_pid_file "the example's file server" "$STATE/example-http.pid"
        stop_pid_file registry "$STATE/registry.pid"
        stop_pid_file dockerd "$STATE/dockerd.started"
        ;;
    serve-example)
        serve_example
        ;;
    stop-example)
        stop_pid_file "the example's file server" "$STATE/example-http.pid"
        ;;
    stop-registry)
        stop_pid_file registry "$STATE/registry.pid"
        ;;
    stop-engine)
        stop_pid_file dockerd "$STATE/dockerd.started"
        ;;
    status)
        engine_up && echo "engine: up (unix://$SOCK)" || echo "engine: down"
        registry_up && echo "registry: up (http://$REGISTRY_ADDR)" || echo "registry: down"
        if ours_running "$STATE/example-http.pid" && files_up; then
            echo "example files: served (http://127.0.0.1:$EXAMPLE_PORT)"
        else
            echo "example files: not served"
        fi
        ;;
    env)
        echo "export DOCKER_HOST=unix://$SOCK"
        echo "export JAVABASE_REGISTRY=$REGISTRY_ADDR"
        ;;
    *)
        echo "$USAGE" >&2
        exit 2
        ;;
esac
