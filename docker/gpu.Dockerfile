# The GPU images of one pinned stack (docker/stacks/<STACK>.txt), as two targets of one
# file so that they share the stack's multi-GB layers (torch, vllm, CUDA libraries):
#   vllm     the rollout server: verifiers' `vf-vllm` (vLLM's OpenAI API + weight-sync routes)
#   trainer  `accelerate launch ... -m hypolab train` (compose.yaml), hypolab installed as a wheel
#
# BASE_IMAGE is either
#   - the official vLLM image of the stack's vLLM version (the default, `make images`):
#     its vllm and torch must be the stack's pins, and are used as they are; or
#   - a plain Debian base without an image registry (`make base-image`, then
#     `make images-gpu GPU_BASE_IMAGE=hypolab/base:bookworm`): the pinned CUDA wheels of
#     torch and vllm come from the package index, plus a C compiler and Python headers
#     (Triton compiles its kernel launchers at run time).
#
#   docker build -f docker/gpu.Dockerfile --target trainer --build-arg BASE_IMAGE=vllm/vllm-openai:v0.10.1.1 \
#     --build-arg STACK=legacy -t hypolab/trainer:legacy .
ARG BASE_IMAGE=vllm/vllm-openai:v0.10.1.1

FROM ${BASE_IMAGE} AS stack
ARG STACK=legacy
# Lets a rebuild remove the images it left untagged, and only those:
#   docker image prune -f --filter label=org.hypolab.gpu-image
LABEL org.hypolab.gpu-image=${STACK}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/hypolab-bundle.crt \
    PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH STACK=${STACK}

# Extra CA certificates (TLS-inspecting proxies): any *.crt in docker/certs/ is appended
# to the system bundle that pip uses. `make images CA_BUNDLE=/path/to/ca.crt` puts it there.
COPY docker/certs/ /tmp/hypolab-certs/
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/hypolab-certs/*.crt > /etc/ssl/certs/hypolab-bundle.crt 2>/dev/null \
    || cp /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/hypolab-bundle.crt; \
    rm -rf /tmp/hypolab-certs

# Triton (vLLM, liger-kernel) builds its launchers with a C compiler against Python.h.
RUN include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"; \
    if ! command -v gcc >/dev/null || [ ! -f "$include/Python.h" ]; then \
      apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-dev >/dev/null \
      && rm -rf /var/lib/apt/lists/*; \
    fi

# A venv that sees the base's packages: on the official image its vllm and torch (checked
# against the pins first), on a Debian base nothing, and the pinned wheels install here.
COPY docker/stacks/ /opt/hypolab/stacks/
COPY docker/check_stack.py /opt/hypolab/check_stack.py
RUN python3 /opt/hypolab/check_stack.py /opt/hypolab/stacks "$STACK" --absent-ok vllm torch \
    && python3 -m venv --system-site-packages /opt/venv \
    && pip install -q --upgrade pip
RUN grep -v '# sdist' "/opt/hypolab/stacks/$STACK.txt" > /tmp/wheels.txt \
    && pip install -r /tmp/wheels.txt -c "/opt/hypolab/stacks/$STACK.txt" \
    && rm /tmp/wheels.txt
# Pins marked "sdist" (deepspeed): their setup.py imports torch, so they build against the
# installed one, without compiling kernels (DeepSpeed builds the ops it needs when used).
RUN sdists="$(sed -n 's/^\([^ #]*\).*# sdist.*/\1/p' "/opt/hypolab/stacks/$STACK.txt")"; \
    if [ -n "$sdists" ]; then \
      pip install -q setuptools wheel -c "/opt/hypolab/stacks/$STACK.txt" \
      && DS_BUILD_OPS=0 pip install --no-build-isolation $sdists -c "/opt/hypolab/stacks/$STACK.txt"; \
    fi \
    && python3 /opt/hypolab/check_stack.py /opt/hypolab/stacks "$STACK" \
       $(sed -n 's/^\([^ #=]*\)==.*/\1/p' "/opt/hypolab/stacks/$STACK.txt")

FROM stack AS vllm
# Not `vf-vllm --help`: vLLM picks its platform while building its argument parser and
# refuses to without a GPU, and builds have none (tests/images checks it on CPU).
RUN python3 -c "import vllm.entrypoints.openai.api_server, verifiers.inference.vllm_server"
EXPOSE 8000 51216
ENTRYPOINT []
CMD ["vf-vllm", "--model", "Qwen/Qwen2.5-7B-Instruct", "--host", "0.0.0.0", "--port", "8000", \
     "--enable-auto-tool-choice", "--tool-call-parser", "hermes", \
     "--gpu-memory-utilization", "0.6", "--max-model-len", "8192", "--enforce-eager"]

FROM stack AS trainer
# A wheel, not an editable install: the image runs what `pip install hypolab` ships, and
# the sources are gone afterwards (nothing can import them by accident).
COPY pyproject.toml setup.py README.md /tmp/hypolab-src/
COPY services /tmp/hypolab-src/services
COPY environments /tmp/hypolab-src/environments
RUN pip install -c "/opt/hypolab/stacks/$STACK.txt" "/tmp/hypolab-src[trainer,audit]" \
    && rm -rf /tmp/hypolab-src \
    && python3 /opt/hypolab/check_stack.py /opt/hypolab/stacks "$STACK" \
       $(sed -n 's/^\([^ #=]*\)==.*/\1/p' "/opt/hypolab/stacks/$STACK.txt") \
    && hypolab --help >/dev/null
WORKDIR /app
COPY configs ./configs
ENTRYPOINT []
CMD ["accelerate", "launch", "--config-file", "configs/accelerate/zero3.yaml", "--num-processes", "3", \
     "-m", "hypolab", "train", "--spec", "configs/experiments/math-python.yaml"]
