# The controller image: `docker build -t modelrelease-controller .` (docs/install.md).
# Pinned base: Python 3.11 on Debian 12, the same as the tests. Pin by digest in your registry
# mirror (`python:3.11.11-slim-bookworm@sha256:…`) for byte-for-byte rebuilds.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/modelrelease
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY analysis ./analysis
# Only the product: no sandbox, test or tooling extras.
RUN /opt/modelrelease/bin/pip install --no-compile . \
    && /opt/modelrelease/bin/python -m compileall -q /opt/modelrelease

FROM ${PYTHON_IMAGE}
# git: GitPython runs it for GitSources, the write-back and version bumps.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 modelrelease \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin modelrelease
COPY --from=build /opt/modelrelease /opt/modelrelease
ENV PATH=/opt/modelrelease/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
USER 65532:65532
EXPOSE 8080 8081 8082
ENTRYPOINT ["modelrelease"]
CMD ["run", "--metrics-port=8080", "--health-port=8081"]
