# syntax=docker/dockerfile:1
# One image for every serin subcommand: `serin controller`, `serin webhook`, `serin loadtester`, …
# Build: docker build -t serin:0.1.0 .   (the Helm chart runs it as uid 10001, read-only root)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# aws-lc-rs builds with the image's gcc; no cmake or clang needed on x86_64 and arm64.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p serin \
    && install -D -m 0755 target/release/serin /out/serin

# glibc, libgcc and CA certificates (the TLS roots reqwest uses), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/serin /usr/local/bin/serin
USER 10001:10001
EXPOSE 8080 8443
ENTRYPOINT ["/usr/local/bin/serin"]
CMD ["--help"]
