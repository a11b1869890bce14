#!/usr/bin/env bash
# Makes sure `docker compose` (v2) and `docker buildx` exist. Machines whose Docker comes
# from Debian 12 have only the old `docker-compose` 1.x and no buildx; Debian 13 packages
# both plugins as static binaries, which work with Debian 12's engine, so they are taken
# from Debian's archive (no other registry) into ~/.docker/cli-plugins.
set -euo pipefail

archive=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins

index=
fetch() { # plugin (Debian's package of the same name, from the suite below)
    local plugin=$1 deb tmp
    if [ -z "$index" ]; then
        index=$(mktemp)
        curl -fsSL --retry 3 "$archive/dists/${DEBIAN_SUITE:-trixie}/main/binary-amd64/Packages.xz" |
            xz -d > "$index"
    fi
    deb=$(awk -v p="$plugin" '$1 == "Package:" { hit = ($2 == p) } hit && $1 == "Filename:" { print $2; exit }' "$index")
    [ -n "$deb" ] || { echo "docker-tools: no $plugin in Debian's index" >&2; exit 1; }
    tmp=$(mktemp -d)
    echo "docker-tools: $plugin from $archive/$deb"
    curl -fsSL --retry 3 -o "$tmp/p.deb" "$archive/$deb"
    dpkg-deb -x "$tmp/p.deb" "$tmp/x"
    mkdir -p "$plugins"
    install -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/$plugin" "$plugins/$plugin"
    rm -rf "$tmp"
}

docker compose version >/dev/null 2>&1 || fetch docker-compose
docker buildx version >/dev/null 2>&1 || fetch docker-buildx
[ -z "$index" ] || rm -f "$index"
docker compose version
docker buildx version
