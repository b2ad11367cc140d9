# Shared by scripts/test and scripts/sandbox: a virtualenv with the locked
# dependencies, and the PostgreSQL and RabbitMQ this machine runs.
# Sourced, not executed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SHOP_VENV:-$ROOT/.venv}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    die "Python 3.11 or newer is needed; install it (Debian: apt-get install python3) and run this again."
}

setup_venv() {
    local stamp="$VENV/.shop-installed"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtualenv in $VENV"
        "$(find_python)" -m venv "$VENV"
    fi
    # Reinstall only when the lock or the project metadata changed.
    if [ ! -f "$stamp" ] || [ "$ROOT/requirements.lock" -nt "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        say "installing the locked dependencies"
        local log="$VENV/install.log"
        if ! install_locked >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            die "installing the dependencies failed; the whole log is in $log"
        fi
        touch "$stamp"
    fi
    compile_bytecode
    export PATH="$VENV/bin:$PATH"
}

# Bytecode written ahead, once: where PYTHONDONTWRITEBYTECODE is set (as on
# this project's CI machines and in many containers) Python never caches
# what it compiles, so every process (each shopctl command, each part of a
# stack, each test worker) compiled every module it imported from source
# again: 0.6 of the 1.07 CPU-seconds of `import shopctl.cli`. uv, unlike
# pip, leaves the installed packages uncompiled.
compile_bytecode() {
    local stamp="$VENV/.shop-bytecode"
    if [ ! -f "$stamp" ] || [ "$VENV/.shop-installed" -nt "$stamp" ]; then
        "$VENV/bin/python" -m compileall -q -j 0 "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
        touch "$stamp"
    fi
    # the project's own packages: quick when up to date (a stat a file)
    (cd "$ROOT" && "$VENV/bin/python" -m compileall -q -j 0 shopctl services tui tests bench >/dev/null) || true
}

install_locked() {  # uv from PyPI when it can be had (its cache makes a new venv quick), else pip
    local pip=("$VENV/bin/python" -m pip install --disable-pip-version-check)
    if "${pip[@]}" --quiet uv && [ -x "$VENV/bin/uv" ]; then
        # the system's certificates: a machine whose traffic passes a proxy of its own
        local uv=(env UV_NATIVE_TLS=1 "$VENV/bin/uv" pip install --python "$VENV/bin/python")
        if "${uv[@]}" -r "$ROOT/requirements.lock" && "${uv[@]}" --no-deps -e "$ROOT"; then
            return 0
        fi
        echo "uv failed: installing with pip instead"
    fi
    "${pip[@]}" -r "$ROOT/requirements.lock" && "${pip[@]}" --no-deps -e "$ROOT"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() {  # host port seconds
    local deadline=$((SECONDS + $3))
    while ! port_open "$1" "$2"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.5
    done
}

ensure_postgres() {
    port_open 127.0.0.1 5432 && return 0
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        say "starting PostgreSQL"
        local version
        version="$(ls /etc/postgresql | sort -V | tail -n 1)"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
            die "PostgreSQL $version is installed but would not start; see its log under /var/log/postgresql."
        wait_for_port 127.0.0.1 5432 30 || die "PostgreSQL started but does not answer on 127.0.0.1:5432."
    else
        die "PostgreSQL is not running on 127.0.0.1:5432 and not installed here; install it (Debian: apt-get install postgresql) and run this again."
    fi
}

ensure_rabbitmq() {
    if port_open 127.0.0.1 5672; then return 0; fi
    if command -v rabbitmq-server >/dev/null 2>&1; then
        say "starting RabbitMQ"
        # Its file-handle budget (every quorum queue takes some) follows the
        # open-files limit; 1024 runs out with a few stacks' queues.
        (ulimit -n 65536 2>/dev/null || true; rabbitmq-server -detached >/dev/null 2>&1) || true
        wait_for_port 127.0.0.1 5672 90 ||
            die "RabbitMQ is installed but does not answer on 127.0.0.1:5672; see /var/log/rabbitmq."
    else
        die "RabbitMQ is not running on 127.0.0.1:5672 and not installed here; install it (Debian: apt-get install rabbitmq-server) and run this again."
    fi
}

FRONTEND_SOURCES=(src public index.html package.json package-lock.json vite.config.ts tsconfig.json)  # what the build reads

ensure_frontend() {  # frontend/node_modules from the committed lock, when missing or stale
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm not found: the frontend will not be built (install Node.js 20 and npm)"
        return 0
    fi
    local modules="$ROOT/frontend/node_modules"
    if [ ! -d "$modules" ] || [ "$ROOT/frontend/package-lock.json" -nt "$modules/.package-lock.json" ]; then
        say "frontend dependencies (npm ci)"
        (cd "$ROOT/frontend" && npm ci --no-audit --no-fund >"$ROOT/frontend/npm-ci.log" 2>&1) ||
            { tail -n 20 "$ROOT/frontend/npm-ci.log" >&2; die "npm ci failed in frontend/"; }
    fi
}

frontend_current() {  # dist is there and no source is newer (what shopctl up checks too)
    local index="$ROOT/frontend/dist/index.html"
    [ -f "$index" ] || return 1
    [ -z "$(cd "$ROOT/frontend" && find "${FRONTEND_SOURCES[@]}" -newer "$index" 2>/dev/null | head -n 1)" ]
}

ensure_frontend_build() {  # frontend/dist, from the build cache when these sources were built before
    command -v npm >/dev/null 2>&1 || return 0  # shopctl up says what that means
    frontend_current && return 0
    local key cache
    key="$(cd "$ROOT/frontend" && find "${FRONTEND_SOURCES[@]}" -type f 2>/dev/null | LC_ALL=C sort |
        xargs sha256sum | sha256sum | cut -c1-16)"
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/shop/frontend-$key"
    if [ ! -f "$cache/index.html" ]; then
        ensure_frontend
        say "building the frontend"
        (cd "$ROOT/frontend" && npm run build >"$ROOT/frontend/build.log" 2>&1) ||
            { tail -n 20 "$ROOT/frontend/build.log" >&2; die "npm run build failed in frontend/"; }
        mkdir -p "$(dirname "$cache")"
        rm -rf "$cache.tmp" && cp -a "$ROOT/frontend/dist" "$cache.tmp" && rm -rf "$cache" &&
            mv "$cache.tmp" "$cache"
    else
        say "the frontend, built before from these sources ($cache)"
        rm -rf "$ROOT/frontend/dist" && cp -a "$cache" "$ROOT/frontend/dist"
    fi
    touch "$ROOT/frontend/dist/index.html"  # newer than every source now
}

ensure_prometheus() {  # Debian's prometheus (and promtool): up starts it beside the local stack
    command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's prometheus (metrics and alerts beside the stack)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 &&
                apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; } ||
            echo "prometheus could not be installed: the stack runs without it"
    else
        echo "no prometheus and no root to install it: the stack runs without it"
    fi
}

ensure_rabbitmq_metrics() {  # RabbitMQ's rabbitmq_prometheus plugin (:15692), for Prometheus
    command -v rabbitmq-plugins >/dev/null 2>&1 || return 0
    port_open 127.0.0.1 15692 && return 0
    rabbitmq-plugins enable rabbitmq_prometheus >/dev/null 2>&1 ||
        echo "the rabbitmq_prometheus plugin could not be enabled: Prometheus sees no queues"
}

ensure_chromium() {  # Debian's chromium, for the browser tests
    [ -x /usr/bin/chromium ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's chromium (the browser tests)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q chromium >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } ||
            echo "chromium could not be installed: the browser tests will skip"
    else
        echo "no /usr/bin/chromium and no root to install it: the browser tests will skip"
    fi
}

# The frontend's install and build take as long as the Python install: run
# them beside it (start_frontend STEP...), then wait (finish_frontend).
start_frontend() {
    FRONTEND_LOG="$(mktemp)"
    (for step in "$@"; do "$step" || exit 1; done) >"$FRONTEND_LOG" 2>&1 &
    FRONTEND_PID=$!
}

finish_frontend() {
    local failed=0
    wait "$FRONTEND_PID" || failed=1
    cat "$FRONTEND_LOG"
    rm -f "$FRONTEND_LOG"
    [ "$failed" = 0 ] || die "the frontend could not be set up (see above)"
}
