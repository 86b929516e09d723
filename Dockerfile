# pvwatch in a container (issue 21 part 3; docs/operations.md "Docker").
#   docker build -t pvwatch .
#   docker run -d --name pvwatch -p 2575:2575 -v pvwatch:/var/lib/pvwatch pvwatch
#   docker exec pvwatch pvwatch status -c /etc/pvwatch/pvwatch.lua
# Two stages: the build tools stay in the first; the image holds the
# binary, the rule pack, the man page and the runtime libraries only.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
        pkg-config liblua5.4-dev libuv1-dev libsqlite3-dev \
        libcurl4-openssl-dev nettle-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# No systemd in a container: sd_notify is compiled out. The tests run in CI.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
        -DPV_SYSTEMD=OFF -DPV_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && DESTDIR=/out cmake --install /build \
 && install -m 0644 packaging/docker/pvwatch.lua /out/etc/pvwatch/pvwatch.lua \
 && /out/usr/bin/pvwatch check -c /out/etc/pvwatch/pvwatch.lua

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblua5.4-0 libuv1 \
        libsqlite3-0 libcurl4 libnettle8 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/pvwatch --shell /usr/sbin/nologin pvwatch \
 && install -d -o pvwatch -g pvwatch -m 0750 /var/lib/pvwatch
COPY --from=build /out/ /
USER pvwatch
WORKDIR /var/lib/pvwatch
VOLUME /var/lib/pvwatch
EXPOSE 2575
# Exit 0 while the engine holds its database (pvwatch status).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s \
    CMD ["pvwatch", "status", "-c", "/etc/pvwatch/pvwatch.lua"]
# SIGTERM (docker stop) finishes the batch at hand and exits 0.
STOPSIGNAL SIGTERM
CMD ["pvwatch", "run", "-c", "/etc/pvwatch/pvwatch.lua"]
