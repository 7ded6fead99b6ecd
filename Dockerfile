# pingmon's container image. Its documented commands (tests/image/test_image_build.py runs each):
#
#   docker build -t pingmon .
#   docker run -p 9108:9108 pingmon
#   docker run -p 9108:9108 -v "$PWD/pingmon.yaml:/etc/pingmon/pingmon.yaml:ro" -e STRIPE_API_KEY pingmon
#   docker run --rm -v "$PWD/pingmon.yaml:/etc/pingmon/pingmon.yaml:ro" -e STRIPE_API_KEY pingmon check --target orders-webhook
#   docker run --rm -p 9108:9108 pingmon demo --listen 0.0.0.0:9108
#   docker run --rm --entrypoint cat pingmon /usr/share/pingmon/pingmon.example.yaml >pingmon.yaml
#
# The first run needs no secret: the image's /etc/pingmon/pingmon.yaml (config/pingmon.image.yaml)
# has pingmon check its own /-/healthy; see http://localhost:9108/status. The next two read your
# pingmon.yaml instead, e.g. with a target orders-webhook whose provider reads
# {env: STRIPE_API_KEY} (exported in your shell): the daemon, then one check of that target
# (exit 1 when it fails). demo runs pingmon against fake providers inside the container (see the
# README). The last writes config/pingmon.example.yaml, which documents every key, as a start
# for your file. The image runs as uid 10001 and writes nothing, so a read-only root filesystem
# works; a Kubernetes ConfigMap mounted on /etc/pingmon replaces the configuration.
#
# Offline build (what the tests do): pip reads the PIP_* build args as its options, e.g.
#   buildah bud -v /srv/wheels:/wheels:ro --build-arg PIP_NO_INDEX=1 \
#     --build-arg PIP_FIND_LINKS=/wheels --build-arg BASE_IMAGE=localhost/debian:bookworm .
# The same base serves both stages, so the venv's python symlink resolves in the final one.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
ENV PATH=/opt/pingmon/bin:${PATH} \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md /src/
COPY pingmon/ /src/pingmon/
# pip and pingmon are the venv's once it exists; pip compiles the bytecode the final stage reads.
RUN python3 -m venv /opt/pingmon \
    && pip install --no-cache-dir /src \
    && pingmon --version

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG PINGMON_VERSION=0.1.0
LABEL org.opencontainers.image.title="pingmon" \
      org.opencontainers.image.description="Provider-aware health checks for SaaS APIs, exported as Prometheus metrics" \
      org.opencontainers.image.version="${PINGMON_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
RUN groupadd --gid 10001 pingmon \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin pingmon
COPY --from=build /opt/pingmon /opt/pingmon
COPY config/pingmon.image.yaml /etc/pingmon/pingmon.yaml
COPY config/pingmon.example.yaml /usr/share/pingmon/pingmon.example.yaml
ENV PATH=/opt/pingmon/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PINGMON_CONFIG=/etc/pingmon/pingmon.yaml
USER 10001:10001
EXPOSE 9108
# No curl in slim images: Python asks. The port follows PINGMON_LISTEN when it is set.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; port = os.environ.get('PINGMON_LISTEN', ':9108').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/-/healthy', timeout=4)"]
ENTRYPOINT ["pingmon"]
CMD ["run", "--config", "/etc/pingmon/pingmon.yaml"]
