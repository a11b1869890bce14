#!/usr/bin/env bash
# Builds the container images without a registry (docs/containers.md):
#   1. the Debian base the Dockerfiles name (`debian:bookworm-...-slim`), made by
#      mmdebstrap from Debian's packages and imported under that name, unless present;
#   2. the binaries, once, on the host (`cargo build --release`), staged in target/image/;
#   3. `tenantless:VERSION` from the Dockerfile with BINARIES=prebuilt (no compiling in
#      the image), and `tenantless-postgres:VERSION` from docker/postgres/.
# Prints each image's size. Runnable by hand; scripts/compose-test.sh and .ci/run call it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/docker-tools.sh >/dev/null
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
base=$(sed -n 's/^ARG DEBIAN=//p' Dockerfile)
suite=${base#debian:}
suite=${suite%%-*}

if ! docker image inspect "$base" >/dev/null 2>&1; then
    if ! command -v mmdebstrap >/dev/null; then
        [ "$(id -u)" = 0 ] || { echo "images: install mmdebstrap (Debian's package)" >&2; exit 1; }
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
    fi
    echo "== base image $base (mmdebstrap $suite, minbase, as Debian's slim images are made)"
    # Like the official slim images: no documentation, manuals or translations.
    mmdebstrap --variant=minbase --quiet \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        "$suite" - "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' - "$base" >/dev/null
fi

echo "== binaries (cargo build --release, once; the image copies them)"
cargo build --release --locked --bins
rm -rf target/image
mkdir -p target/image
cp target/release/tenantless target/release/tenantless-server target/release/tenantless-agent target/image/

echo "== tenantless:$version"
docker buildx build --builder default --load --quiet --build-arg BINARIES=prebuilt \
    --build-arg VERSION="$version" -t "tenantless:$version" . >/dev/null
echo "== tenantless-postgres:$version"
docker buildx build --builder default --load --quiet -t "tenantless-postgres:$version" docker/postgres >/dev/null

for image in "$base" "tenantless:$version" "tenantless-postgres:$version"; do
    size=$(docker image inspect --format '{{.Size}}' "$image")
    echo "image $image: $((size / 1000000)) MB"
done
