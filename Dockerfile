# pingmon's container image.
#
#   docker build -t pingmon .
#   docker run -p 9108:9108 -v "$PWD/pingmon.yaml:/etc/pingmon/pingmon.yaml:ro" pingmon
#   docker run --rm -e STRIPE_API_KEY=... pingmon check --target orders-webhook
#
# /etc/pingmon/pingmon.yaml is the documented example configuration: `docker run IMAGE config
# validate` names the secrets it still needs; a ConfigMap or bind mount replaces it. The image
# runs as uid 10001 and writes nothing, so a read-only root filesystem works.
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
COPY config/pingmon.example.yaml /etc/pingmon/pingmon.yaml
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
