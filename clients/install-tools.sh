#!/usr/bin/env bash
# Installs what generates and compiles the client stubs (protos/buf.gen.yaml,
# tests/test_clients.py), on Debian 12 where only the Debian archive, PyPI and npm are
# reachable:
#   protoc 3.21            Debian's protobuf-compiler (Java's generator, built into protoc)
#   Go 1.19                golang-go, protoc-gen-go 1.28 (APIv2), protoc-gen-go-grpc, and the
#                          Go libraries they compile against: golang-google-protobuf-dev,
#                          golang-google-grpc-dev, golang-google-genproto-dev (google.*)
#   grpc-java 1.41         protobuf-compiler-grpc-java-plugin (grpc_java_plugin), and the jars:
#                          libgrpc-java, libprotobuf-java (javac comes with the JDK they pull in)
#   TypeScript             clients/typescript's package-lock: protoc-gen-es, tsc, Connect
# Idempotent, and with everything present it only looks.
#
# Usage: clients/install-tools.sh     (apt needs root or sudo)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "clients/install-tools: need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

# Each Debian package and a file it installs, to tell whether it is there.
declare -A wanted=(
    [protobuf-compiler]=/usr/bin/protoc
    [golang-go]=/usr/bin/go
    [protoc-gen-go]=/usr/bin/protoc-gen-go
    [protoc-gen-go-grpc]=/usr/bin/protoc-gen-go-grpc
    [golang-google-protobuf-dev]=/usr/share/gocode/src/google.golang.org/protobuf
    [golang-google-grpc-dev]=/usr/share/gocode/src/google.golang.org/grpc
    [golang-google-genproto-dev]=/usr/share/gocode/src/google.golang.org/genproto
    [protobuf-compiler-grpc-java-plugin]=/usr/bin/grpc_java_plugin
    [libgrpc-java]=/usr/share/java/grpc-stub.jar
    [libprotobuf-java]=/usr/share/java/protobuf.jar
    [default-jdk-headless]=/usr/bin/javac
)
packages=()
for package in "${!wanted[@]}"; do
    [[ -e ${wanted[$package]} ]] || packages+=("$package")
done
# protoc-gen-go 1.3 (golang-goprotobuf-dev) cannot generate proto3 optional fields.
if [[ -e /usr/bin/protoc-gen-go ]] && ! protoc-gen-go --version 2>/dev/null | grep -q 'v1\.2[89]\|v1\.3'; then
    packages+=(protoc-gen-go)
fi

if ((${#packages[@]})); then
    echo "clients/install-tools: installing ${packages[*]} from Debian"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

# npm ci only when an installed version differs from the lock (it empties node_modules).
if ! (cd clients/typescript && node -e '
    const fs = require("fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    for (const [path, entry] of Object.entries(lock.packages)) {
        if (!path) continue;
        const found = JSON.parse(fs.readFileSync(path + "/package.json", "utf8"));
        if (found.version !== entry.version) process.exit(1);
    }' 2>/dev/null); then
    echo "clients/install-tools: installing clients/typescript's npm packages"
    (cd clients/typescript && npm ci --silent --no-audit --no-fund --ignore-scripts)
fi

protoc --version
go version
protoc-gen-go --version
javac -version
clients/typescript/node_modules/.bin/tsc --version
