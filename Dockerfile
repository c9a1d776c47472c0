# syntax=docker/dockerfile:1
#
# edgewatch: a static musl binary on distroless/static, running as non-root.
#
#   docker build -t edgewatch:0.1.0 .
#
# The final image holds the binary, CA certificates and /etc/passwd with the `nonroot`
# user (65532), and nothing else: no shell, no package manager.

# The toolchain the project is built and tested with (rust-version in Cargo.toml is the floor).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# ring compiles C and assembly; musl-gcc provides the C toolchain for the musl target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
# The whole context minus .dockerignore: Cargo.toml may declare benches or tests whose
# files must exist for the manifest to load.
COPY . .
# Cache the registry and target dirs between builds; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin edgewatch \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/edgewatch /out/edgewatch

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="edgewatch" \
      org.opencontainers.image.description="Kubernetes operator that watches Azure IoT Edge devices through the IoT Hub service API" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/edgewatch/edgewatch"
COPY --from=build /out/edgewatch /usr/local/bin/edgewatch
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/edgewatch"]
CMD ["run"]
