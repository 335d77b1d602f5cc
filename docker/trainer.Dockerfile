# Trainer for one pinned stack: the official vLLM image of the stack's vLLM version (so
# vllm, torch and NCCL match the vLLM server's exactly), the stack's training libraries,
# and hypolab[trainer]. Runs `accelerate launch ... -m hypolab train` (compose.yaml).
#   docker build -f docker/trainer.Dockerfile --build-arg BASE_IMAGE=vllm/vllm-openai:v0.10.1.1 --build-arg STACK=legacy .
ARG BASE_IMAGE=vllm/vllm-openai:v0.10.1.1
FROM ${BASE_IMAGE}
ARG STACK=legacy

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/hypolab-bundle.crt \
    PYTHONUNBUFFERED=1
COPY docker/certs/ /tmp/hypolab-certs/
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/hypolab-certs/*.crt > /etc/ssl/certs/hypolab-bundle.crt 2>/dev/null \
    || cp /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/hypolab-bundle.crt; \
    rm -rf /tmp/hypolab-certs

COPY docker/stacks/ /opt/hypolab/stacks/
COPY docker/check_stack.py /opt/hypolab/check_stack.py
RUN python3 /opt/hypolab/check_stack.py /opt/hypolab/stacks "$STACK" vllm torch \
    && python3 -m pip install -r "/opt/hypolab/stacks/$STACK.txt"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY environments ./environments
RUN python3 -m pip install -c "/opt/hypolab/stacks/$STACK.txt" ".[trainer,audit]" \
    && python3 /opt/hypolab/check_stack.py /opt/hypolab/stacks "$STACK" vllm torch verifiers accelerate transformers \
    && hypolab --help >/dev/null
COPY configs ./configs

ENV STACK=${STACK}
ENTRYPOINT []
CMD ["accelerate", "launch", "--config-file", "configs/accelerate/zero3.yaml", "--num-processes", "3", \
     "-m", "hypolab", "train", "--spec", "configs/experiments/math-python.yaml"]
