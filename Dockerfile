# bridge-doctor the way the mautrix bridges ship: config and data in /data,
# dist/docker-run.sh as the entry (first start writes the example config).
#   docker build -t bridge-doctor .
#   docker run --rm -v "$PWD/doctor-data:/data" bridge-doctor
# Bridge configs and logs to diagnose: mount them read-only at the paths the
# config names (for example -v /opt/mautrix-telegram:/opt/mautrix-telegram:ro).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/bridge-doctor /usr/local/bin/bridge-doctor

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 1337 --home-dir /data bridge-doctor \
    && mkdir /data && chown bridge-doctor /data
COPY --from=build /usr/local/bin/bridge-doctor /usr/local/bin/bridge-doctor
COPY dist/docker-run.sh /opt/bridge-doctor/docker-run.sh
USER bridge-doctor
WORKDIR /data
VOLUME /data
# The appservice API (appservice.port); metrics.listen when set.
EXPOSE 29399
CMD ["/opt/bridge-doctor/docker-run.sh"]
