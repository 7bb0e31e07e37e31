#!/usr/bin/env bash
# Installs what tests/test_deploy.py runs, on Debian 12 where only the Debian archive,
# PyPI and npm are reachable:
#   promtool             Debian's `prometheus` package; the server it brings along is
#                        stopped and disabled right after the install
#   kubectl kustomize    any kubectl already on PATH, else Debian's `kubernetes-client`
#                        (kubectl 1.20 with kustomize v2, enough for deploy/kubernetes)
#   kubernetes-validate  PyPI, into the project's virtualenv
#   redis-server         Debian's `redis-server`, for the shared-state tests (tests/redis_fixtures.py
#                        starts its own on a loopback port); the service the package starts is
#                        stopped and disabled right after the install
# Idempotent, and with everything present it only looks, in well under a second.
#
# Usage: deploy/install-tools.sh [VENV]     (VENV defaults to .venv; apt needs root or sudo)
set -euo pipefail

venv=${1:-.venv}
kubernetes_validate_spec='kubernetes-validate>=1.37,<2'

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "install-tools: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

# Debian's postinst enables the server and starts it unless policy-rc.d forbids it; the
# tests only need promtool, so nothing of it may keep running.
stop_prometheus_server() {
    if [[ -d /run/systemd/system ]]; then
        as_root systemctl disable --now prometheus.service
    elif [[ -x /etc/init.d/prometheus ]]; then
        as_root invoke-rc.d prometheus stop || true
        as_root update-rc.d prometheus disable
    fi
}

# Likewise for redis-server: the tests start their own, never the system's on :6379.
stop_redis_server() {
    if [[ -d /run/systemd/system ]]; then
        as_root systemctl disable --now redis-server.service
    elif [[ -x /etc/init.d/redis-server ]]; then
        as_root invoke-rc.d redis-server stop || true
        as_root update-rc.d redis-server disable
    fi
}

packages=()
command -v promtool >/dev/null || packages+=(prometheus)
command -v redis-server >/dev/null || packages+=(redis-server)
if ! command -v kubectl >/dev/null; then
    packages+=(kubernetes-client)
elif ! kubectl kustomize --help >/dev/null 2>&1; then
    echo "install-tools: $(command -v kubectl) has no 'kustomize' command; use kubectl >= 1.14" >&2
    exit 1
fi

if ((${#packages[@]})); then
    echo "install-tools: installing ${packages[*]} from Debian"
    as_root apt-get update -qq
    # --no-install-recommends keeps out prometheus-node-exporter, another daemon.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${packages[@]}"
    if [[ " ${packages[*]} " == *" prometheus "* ]]; then
        stop_prometheus_server
    fi
    if [[ " ${packages[*]} " == *" redis-server "* ]]; then
        stop_redis_server
    fi
fi

if [[ ! -x $venv/bin/python ]]; then
    echo "install-tools: no virtualenv at $venv; run 'make install' first" >&2
    exit 1
fi
if ! "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
    echo "install-tools: installing $kubernetes_validate_spec into $venv"
    "$venv/bin/python" -m pip install --quiet "$kubernetes_validate_spec"
fi

promtool --version 2>&1 | sed -n 1p
redis-server --version
kubectl version --client 2>/dev/null | sed -n 1p
"$venv/bin/python" -m kubernetes_validate --version
