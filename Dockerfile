# syntax=docker/dockerfile:1
# openmeet-appservice: the release binary on a distroless runtime — no shell, no package manager,
# user nonroot (65532). The chart runs it with a read-only root filesystem and only /tmp writable;
# tests/helm_chart.rs checks that the binary needs nothing more (and that it needs the CA bundle).
#
#   docker build -t openmeet-appservice .
#   docker run --rm openmeet-appservice --help

ARG RUST_VERSION=1.95
# The build, the libpq stage and the runtime share one Debian release (bookworm = debian12), so
# the copied libraries match the runtime's glibc.
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The bundled SQLite's compile-time options.
COPY .cargo .cargo
COPY src src
COPY migrations migrations
# Cargo.toml declares the benchmarks, so their sources must exist even though they are not built.
COPY benches benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin openmeet-appservice \
 && cp target/release/openmeet-appservice /usr/local/bin/openmeet-appservice

# libpq (PostgreSQL's client library) and what it links, which the runtime lacks. glibc and
# libgcc come with the runtime image and are left out. Each library keeps its soname and goes to
# its canonical directory, which is on the runtime's default search path.
FROM debian:${DEBIAN_RELEASE}-slim AS libs
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/openmeet-appservice /usr/local/bin/openmeet-appservice
RUN set -eu; mkdir /runtime-libs; \
    ldd /usr/local/bin/openmeet-appservice \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
      | grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|libgcc_s)\.so' \
      | while read -r lib; do \
          dir="/runtime-libs$(dirname "$(realpath "$lib")")"; \
          mkdir -p "$dir"; cp -L "$lib" "$dir/"; \
        done; \
    find /runtime-libs -type f | sort

# distroless/cc: glibc, libgcc, OpenSSL, the CA bundle (the HTTP client refuses to start without
# one), /etc/passwd with nonroot, and nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=libs /runtime-libs/ /
COPY --from=build /usr/local/bin/openmeet-appservice /usr/local/bin/openmeet-appservice
USER 65532:65532
# appservice (Synapse), platform (OpenMeet core), metrics and health.
EXPOSE 8009 8010 9100
ENV OPENMEET_AS_CONFIG=/etc/openmeet-appservice/config.yaml
ENTRYPOINT ["/usr/local/bin/openmeet-appservice"]
CMD ["serve"]
