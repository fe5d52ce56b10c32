# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run on a slim Debian with only CA certificates.
# The C codecs (libjpeg-turbo/mozjpeg, libwebp) and aws-lc are built by cargo with the image's gcc;
# rav1e's assembly and mozjpeg's SIMD (the `nasm` feature: AVIF encoding about three times faster, JPEG
# decoding and encoding faster, same bytes) with nasm; libaom, sizer's AVIF encoder (the `aom` feature: AVIF
# at sharp's SSIM and bytes), from source with cmake and nasm.

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nasm cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# benches/ only because Cargo.toml names its bench target: cargo refuses a manifest whose target is missing.
COPY benches benches
COPY src src
# Cache mounts keep the registry and the dependency build between image builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features nasm,aom --bin sizer && cp target/release/sizer /usr/local/bin/sizer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /srv/sizer sizer
WORKDIR /srv/sizer
COPY --from=build /usr/local/bin/sizer /usr/local/bin/sizer
COPY config/default.toml /etc/sizer/sizer.toml
# The demo images, so the container answers with no store configured (and shows the demo page at /:
# the root below is the embedded default's own relative name, resolved against the WORKDIR).
COPY samples /srv/sizer/samples
USER sizer
# Environment overrides win over the config file (see config/default.toml for every key).
ENV SIZER_SERVER__LISTEN=0.0.0.0:8080 \
    SIZER_STORE__ROOT=samples
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
# SIGTERM (docker stop) drains in-flight requests and write-backs within server.shutdown_grace_ms.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sizer"]
CMD ["serve", "--config", "/etc/sizer/sizer.toml"]
