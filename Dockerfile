# moonbench as a static binary in an empty image, run as a non-root user.
# Build: docker build -t moonbench:latest .
# Not built in this project's CI (no container engine there); the binary inside is the
# same `cargo build --release`, for the musl target so that it needs no libc.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/moonbench /moonbench

FROM scratch
# CA certificates for https servers and the Hugging Face Hub.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /moonbench /usr/local/bin/moonbench
USER 65532:65532
WORKDIR /results
ENTRYPOINT ["/usr/local/bin/moonbench"]
CMD ["--help"]
