# vLLM rollout server for one pinned stack: the official vLLM image of the stack's vLLM
# version plus that stack's verifiers, whose `vf-vllm` adds the weight-sync routes.
#   docker build -f docker/vllm.Dockerfile --build-arg BASE_IMAGE=vllm/vllm-openai:v0.10.1.1 --build-arg STACK=legacy .
ARG BASE_IMAGE=vllm/vllm-openai:v0.10.1.1
FROM ${BASE_IMAGE}
ARG STACK=legacy

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/hypolab-bundle.crt
COPY docker/certs/ /tmp/hypolab-certs/
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/hypolab-certs/*.crt > /etc/ssl/certs/hypolab-bundle.crt 2>/dev/null \
    || cp /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/hypolab-bundle.crt; \
    rm -rf /tmp/hypolab-certs

COPY docker/stacks/ /opt/hypolab/stacks/
COPY docker/check_stack.py /opt/hypolab/check_stack.py
RUN python3 /opt/hypolab/check_stack.py /opt/hypolab/stacks "$STACK" vllm torch \
    && python3 -m pip install -c "/opt/hypolab/stacks/$STACK.txt" verifiers \
    && python3 /opt/hypolab/check_stack.py /opt/hypolab/stacks "$STACK" vllm torch verifiers \
    && vf-vllm --help >/dev/null

ENV STACK=${STACK}
EXPOSE 8000 51216
ENTRYPOINT []
CMD ["vf-vllm", "--model", "Qwen/Qwen2.5-7B-Instruct", "--host", "0.0.0.0", "--port", "8000", \
     "--enable-auto-tool-choice", "--tool-call-parser", "hermes", \
     "--gpu-memory-utilization", "0.6", "--max-model-len", "8192", "--enforce-eager"]
