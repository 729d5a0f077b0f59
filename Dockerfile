# syntax=docker/dockerfile:1
# WMS Enterprise image: `wms-server` (API, `serve`) and `wms-server worker` from one image.
# Build:  docker build -t wms-registry/wms-api:0.1.0 .
# The runtime is read-only-root friendly: it writes only to /tmp (and /app/cache when
# mounted), runs as the numeric user 1000:1000 and never compiles bytecode at run time.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---- Stage 1: build a virtual environment with the locked dependencies, then the app ----
FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

RUN pip install --no-cache-dir "uv==0.13.9" \
    && python -m venv /opt/venv

WORKDIR /build

# Dependencies first: this layer is rebuilt only when requirements.lock changes.
COPY requirements.lock ./
RUN uv pip sync --python /opt/venv/bin/python --require-hashes requirements.lock

# Then the application itself (a wheel, not editable: the source is not in the runtime).
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
    && /opt/venv/bin/wms-server --version

# ---- Stage 2: the runtime ----
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="wms-server" \
      org.opencontainers.image.description="WMS Enterprise API server and event worker"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    WMS_DATA_DIR=/tmp/wms \
    XDG_CACHE_HOME=/app/cache \
    PORT=8080 \
    METRICS_PORT=9090

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app

# Numeric user and group: Kubernetes can only verify runAsNonRoot for a numeric USER.
USER 1000:1000

EXPOSE 8080 9090

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["wms-server", "health"]

ENTRYPOINT ["wms-server"]
CMD ["serve"]
