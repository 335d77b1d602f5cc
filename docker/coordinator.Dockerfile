# The coordinator: FastAPI app that sequences hypotheses and launches trainer containers.
# Needs no GPU. On a normal host it builds from the official slim Python image; where no
# image registry is reachable, from the Debian base that `make base-image` makes:
#   docker build -f docker/coordinator.Dockerfile --build-arg BASE_IMAGE=hypolab/base:bookworm .
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/hypolab-bundle.crt \
    PATH=/opt/venv/bin:$PATH

# Extra CA certificates (TLS-inspecting proxies): any *.crt in docker/certs/ is appended
# to the system bundle that pip uses. `make images CA_BUNDLE=/path/to/ca.crt` puts it there.
COPY docker/certs/ /tmp/hypolab-certs/
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/hypolab-certs/*.crt > /etc/ssl/certs/hypolab-bundle.crt 2>/dev/null \
    || cp /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/hypolab-bundle.crt; \
    rm -rf /tmp/hypolab-certs

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY services ./services
COPY environments ./environments
RUN python3 -m venv /opt/venv \
    && pip install --upgrade pip \
    && pip install ".[coordinator]" \
    && hypolab --help >/dev/null
COPY configs ./configs
COPY docker/stacks ./docker/stacks
# The docker runner's single source of truth for trainer and vLLM containers.
COPY compose.yaml compose.hostnet.yaml ./

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/api/health', timeout=4)"]
CMD ["hypolab", "coordinator", "--host", "0.0.0.0", "--port", "8080", "--db", "/data/hypolab.sqlite", \
     "--runner", "docker", "--data-dir", "/app", "--public-url", "http://coordinator:8080"]
