# syntax=docker/dockerfile:1
# The stock-assets image: one image for every service of docker-compose.yml (Dagster code
# location, webserver, daemon, Celery workers, MLflow server, REST API).
#
#   docker build -t stock-assets .
#   podman build --build-arg BASE=localhost/debian-python:bookworm -t stock-assets .
#
# BASE is any Debian-like image with Python 3.11 as `python3` (python:3.11-slim, or Debian
# bookworm's own python3). Stages: `uv` (uv from PyPI), `lock` (uv.lock exported as a
# requirements file), `deps` (the locked packages, rebuilt only when that file changes),
# `project` (the stock_assets package, rebuilt on every code change, small), `dev` (the
# devcontainer), `runtime` (the default, last). Nothing secret is baked in: credentials
# reach containers as environment variables at run time (docker-compose.yml reads them from
# .env); .dockerignore keeps .env, data/, .venv and .git out of the build context.
ARG BASE=python:3.11-slim

FROM ${BASE} AS uv
ARG UV_VERSION=0.13.9
# uv in a venv of its own: Debian's python3 refuses system-wide pip installs (PEP 668).
RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check --quiet "uv==${UV_VERSION}" \
 && ln -s /opt/uv/bin/uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy

FROM uv AS lock
WORKDIR /src
COPY pyproject.toml uv.lock ./
# The locked third-party packages, hashes included: this file changes when uv.lock does, not
# on every edit of pyproject.toml, so the deps stage below is rebuilt only for a new lock.
RUN uv export --frozen --no-dev --no-emit-project --quiet -o /requirements.txt

FROM uv AS deps
# the base's python3, never a downloaded one; bytecode compiled once here, so no process in
# a container compiles the libraries on every start (the venv is read-only to the app user)
ENV UV_COMPILE_BYTECODE=1
COPY --from=lock /requirements.txt /requirements.txt
RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    uv venv --quiet --python python3 /opt/venv \
 && uv pip sync --quiet --python /opt/venv/bin/python /requirements.txt

FROM deps AS project
WORKDIR /src
COPY pyproject.toml README.md dagster.yaml ./
COPY stock_assets ./stock_assets
# the package alone (no dependencies: they are in /opt/venv), under a prefix of its own that
# the runtime stage lays over the venv: lib/python3.X/site-packages/stock_assets, bin/stock-assets
RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked \
    uv pip install --python /opt/venv/bin/python --no-deps --compile-bytecode \
        --prefix /opt/project .

# The devcontainer (.devcontainer/devcontainer.json): uv, make and git; `make env` creates
# the project's environment from uv.lock in the checkout that VS Code mounts.
FROM uv AS dev
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        make git libgomp1 procps >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --user-group --shell /bin/bash app
USER app

FROM ${BASE} AS runtime
# lightgbm and xgboost need OpenMP (libgomp1): present in Debian's python3 base, installed
# on python:3.11-slim
RUN if ! ldconfig -p | grep -q libgomp.so.1; then \
        apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libgomp1 >/dev/null \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin app \
 && mkdir -p /data /mlflow-artifacts /opt/dagster/home/storage \
 && chown app:app /data /mlflow-artifacts /opt/dagster/home /opt/dagster/home/storage
COPY --from=deps /opt/venv /opt/venv
COPY --from=project /opt/project/ /opt/venv/
# The deployment's Dagster instance (PostgreSQL storage from DAGSTER_PG_URL, queued runs) and
# the workspace that points the webserver and the daemon at the `code` service. Used when
# DAGSTER_HOME=/opt/dagster/home (docker-compose.yml sets it); without it the image keeps
# the embedded default (SQLite under $STOCK_ASSETS_HOME/dagster).
COPY deploy/dagster.postgres.yaml /opt/dagster/home/dagster.yaml
COPY deploy/docker/workspace.yaml /opt/dagster/workspace.yaml
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    STOCK_ASSETS_HOME=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The code's revision, recorded with feature definitions and models (the image has no .git):
#   docker compose build --build-arg GIT_REVISION=$(git rev-parse --short=12 HEAD)
ARG GIT_REVISION=unknown
ENV STOCK_ASSETS_GIT_REVISION=${GIT_REVISION}
USER app
WORKDIR /home/app
EXPOSE 3000 4000 5000 8000
CMD ["stock-assets", "--help"]
