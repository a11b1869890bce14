# Tenantless in one image: tenantless-server, tenantless-agent and the tenantless CLI.
#
# Two ways in, one Dockerfile (docs/containers.md):
# - With a registry: `docker build -t tenantless:0.1.0 .` compiles from source on the
#   public Rust image and runs on Debian's slim image.
# - Without one (this project's machines and CI): `scripts/images.sh` imports a Debian
#   base made by mmdebstrap under the same name, builds the binaries on the host once,
#   and passes `--build-arg BINARIES=prebuilt` so that this file copies them instead of
#   compiling again.
#
# Needs BuildKit (docker buildx, the default builder of current Docker), which builds
# only the stages the target uses.

ARG DEBIAN=debian:bookworm-20250520-slim
ARG RUST=rust:1.95-slim-bookworm
ARG BINARIES=source

# The binaries, compiled here from the source.
FROM ${RUST} AS source
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/tenantless target/release/tenantless-server target/release/tenantless-agent /out/

# The binaries, compiled on the host by scripts/images.sh (target/image/).
FROM scratch AS prebuilt
COPY target/image/ /out/

FROM ${BINARIES} AS binaries

FROM ${DEBIAN} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="Tenantless" \
      org.opencontainers.image.description="A mock Intune-style management service and simulated Windows devices" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
RUN groupadd --system --gid 10001 tenantless \
 && useradd --system --uid 10001 --gid tenantless --home-dir /var/lib/tenantless --shell /usr/sbin/nologin tenantless \
 && mkdir -p /var/lib/tenantless \
 && chown tenantless:tenantless /var/lib/tenantless
COPY --from=binaries /out/ /usr/local/bin/
# Every server flag has an environment variable (tenantless-server --help); these make
# the server listen on the container's interfaces and keep its data in the volume.
ENV TENANTLESS_DATA_DIR=/var/lib/tenantless \
    TENANTLESS_LISTEN=0.0.0.0:8443 \
    TENANTLESS_ADMIN_LISTEN=0.0.0.0:8080 \
    TENANTLESS_ADMIN_TLS_LISTEN=0.0.0.0:8444
USER tenantless
WORKDIR /var/lib/tenantless
VOLUME ["/var/lib/tenantless"]
EXPOSE 8443 8080 8444
# The server answers SIGTERM by finishing its requests and writing the journal; it and
# the agent handle signals as PID 1, so no init is needed (compose adds one anyway).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=6s --start-period=30s --retries=3 \
    CMD ["tenantless-server", "--probe"]
CMD ["tenantless-server"]
