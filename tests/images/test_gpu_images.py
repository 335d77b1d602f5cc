"""The vLLM and trainer images of the legacy stack, checked on a host without a GPU.

What a GPU host would run first, minus the GPU: the installed (non-editable) hypolab
imports whole, the stack's pins are exactly what is installed, `hypolab train --check`
accepts every experiment spec, the entrypoints answer, and `docker compose run trainer`
with compose.rehearsal.yaml trains one step on CPU with the image's CUDA torch and
writes its metrics to the `outputs` volume.
"""

import json
import subprocess

import pytest

from hypolab.contracts import MetricEvent

from ..conftest import ROOT
from .conftest import compose, image_env, in_image

pytestmark = [pytest.mark.integration, pytest.mark.images, pytest.mark.timeout(5400)]  # a cold build: ~30 min

SPECS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs" / "experiments").glob("*.yaml"))


def stack_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "docker" / "stacks" / "legacy.txt").read_text().splitlines():
        req = line.split("#", 1)[0].strip()
        if "==" in req:
            name, pin = req.split("==", 1)
            pins[name.strip()] = pin.strip()
    return pins


def source_modules() -> set[str]:
    """hypolab's modules as the checkout has them (services/ is the package)."""
    services = ROOT / "services"
    mods = set()
    for path in services.rglob("*.py"):
        parts = path.relative_to(services).with_suffix("").parts
        if not all((services.joinpath(*parts[:i]) / "__init__.py").exists() for i in range(len(parts))):
            continue  # not inside a package: not shipped
        name = ".".join(("hypolab", *parts))
        mods.add(name.removesuffix(".__init__"))
    return mods


# hypolab.__main__ runs the CLI when imported (`python -m hypolab`): it is found, not imported.
IMPORT_ALL = """
import importlib, importlib.util, json, pkgutil, hypolab
failed = {}
names = ["hypolab"] + [m.name for m in pkgutil.walk_packages(hypolab.__path__, "hypolab.")]
for name in names:
    try:
        if name.endswith(".__main__"):
            assert importlib.util.find_spec(name) is not None
        else:
            importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"file": hypolab.__file__, "modules": names, "failed": failed}))
"""


def test_every_hypolab_module_imports_from_the_installed_wheel(gpu_images):
    out = in_image(gpu_images["trainer"], "python3", "-c", IMPORT_ALL)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["file"].startswith("/opt/venv/lib/") and "site-packages" in found["file"]  # not the sources
    assert found["failed"] == {}
    assert set(found["modules"]) == source_modules()


VERSIONS = """
import json, deepspeed, torch, trl, verifiers, vllm
from importlib.metadata import version
print(json.dumps({"versions": {n: version(n) for n in %r},
                  "torch_cuda": torch.version.cuda, "gpu": torch.cuda.is_available()}))
"""


def test_the_stack_imports_with_its_exact_pins(gpu_images):
    pins = stack_pins()
    out = in_image(gpu_images["trainer"], "python3", "-c", VERSIONS % sorted(pins))
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert {name: have.split("+")[0] for name, have in found["versions"].items()} == pins
    assert found["torch_cuda"] and found["torch_cuda"].startswith("12.")  # the CUDA build of torch
    assert found["gpu"] is False  # ... imported on a host without one


# A stand-in for vLLM's /health (a file named `health` served by http.server), so that
# `--check` without --rehearsal runs its vLLM probe too; nothing else is faked.
CHECK_ALL = """
set -e
mkdir -p /tmp/fake-vllm && touch /tmp/fake-vllm/health
python3 -m http.server 8000 --bind 127.0.0.1 --directory /tmp/fake-vllm >/dev/null 2>&1 &
for _ in $(seq 50); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health')" 2>/dev/null && break; sleep 0.1; done
for spec in "$@"; do
  echo "== $spec --rehearsal"; hypolab train --check --rehearsal --spec "$spec" > /tmp/rehearsal.json
  echo "== $spec"; VLLM_URL=http://127.0.0.1:8000 hypolab train --check --spec "$spec" > /tmp/gpu.json
  python3 -c "import json; r, g = (json.load(open(f)) for f in ('/tmp/rehearsal.json', '/tmp/gpu.json')); \
print(json.dumps([r['experiment_id'], r['rehearsal'], g['rehearsal'], g['vllm_url']]))"
done
echo "== without vLLM"; hypolab train --check --spec "$1" 2>&1 && exit 1 || true
"""


def test_train_check_accepts_every_spec(gpu_images):
    assert len(SPECS) >= 3
    out = in_image(gpu_images["trainer"], "bash", "-c", CHECK_ALL, "check", *SPECS)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("[")]
    assert [r[1:] for r in results] == [[True, False, "http://127.0.0.1:8000"]] * len(SPECS)
    assert out.stdout.rstrip().endswith("vLLM is not reachable at http://vllm:8000 (GET /health): start it "
                                        "with `make up`, set VLLM_URL, or run a CPU rehearsal with --rehearsal")


# vLLM 0.10.1.1 picks its platform while it builds its argument parser (`--help` too) and
# refuses to without a GPU. This host has no driver, so the check gives vLLM the two things
# a GPU host's NVIDIA runtime would: a libcuda.so.1 (a stub: every driver call vLLM's
# extensions link returns CUDA_ERROR_NO_DEVICE) and a reason to pick CUDA without NVML
# (vLLM's own Jetson test, /etc/nv_tegra_release). Everything else is the image's.
VF_VLLM_HELP = """
set -e
site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p /tmp/no-driver
nm -D --undefined-only "$site"/vllm/*.so | awk '$2 ~ /^cu[A-Z]/ {print "int " $2 "(void) { return 100; }"}' \
  | sort -u > /tmp/no-driver/libcuda.c
gcc -shared -fPIC -o /tmp/no-driver/libcuda.so.1 /tmp/no-driver/libcuda.c
touch /etc/nv_tegra_release
LD_LIBRARY_PATH=/tmp/no-driver vf-vllm --help
"""


def test_entrypoints_answer(gpu_images):
    accelerate = in_image(gpu_images["trainer"], "accelerate", "launch", "--help")
    assert accelerate.returncode == 0, accelerate.stderr[-3000:]
    assert "--num_processes" in accelerate.stdout and "--config_file" in accelerate.stdout

    vf_vllm = in_image(gpu_images["vllm"], "bash", "-c", VF_VLLM_HELP)
    assert vf_vllm.returncode == 0, vf_vllm.stdout[-2000:] + vf_vllm.stderr[-3000:]
    assert "usage: vf-vllm" in vf_vllm.stdout
    config = json.loads(compose("--profile", "train", "config", "--format", "json", env=image_env()).stdout)
    flags = {arg for arg in config["services"]["vllm"]["command"] if arg.startswith("--")}
    assert "--model" in flags and {f for f in flags if f not in vf_vllm.stdout} == set()  # compose's flags exist

    pins = stack_pins()
    versions = in_image(gpu_images["vllm"], "python3", "-c",
                        "import verifiers, vllm; print(verifiers.__version__, vllm.__version__)")
    assert versions.returncode == 0, versions.stderr[-3000:]
    assert versions.stdout.split()[-2:] == [pins["verifiers"], pins["vllm"]]


def test_compose_run_trainer_rehearses_one_step_into_the_outputs_volume(gpu_images, project_name):
    files = ["-f", "compose.yaml", "-f", "compose.rehearsal.yaml", "-p", project_name]
    run = compose(*files, "run", "--rm", "trainer", env=image_env(), check=False, timeout=1200)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    start = run.stdout.rindex('{\n  "experiment_id"')  # `hypolab train` prints its summary last
    summary, _ = json.JSONDecoder().raw_decode(run.stdout[start:])
    assert summary["global_step"] == 1 and summary["rehearsal"] is True

    # what the service left in its named volume, read back through the same service
    read = compose(*files, "run", "--rm", "--no-deps", "trainer", "bash", "-c",
                   "cat outputs/gsm8k/resolved_config.json; echo; echo ===; cat outputs/gsm8k/metrics.jsonl",
                   env=image_env(), timeout=300)
    config_text, _, metrics_text = read.stdout.partition("\n===\n")
    config = json.loads(config_text)
    assert config["coordinator"] == "http://coordinator:8080"  # compose.yaml's environment reached it
    assert config["library"]["torch"].startswith("2.7.1") and config["library"]["vllm"] == "0.10.1.1"
    events = [MetricEvent.model_validate_json(line) for line in metrics_text.splitlines() if line.strip()]
    assert {e.step for e in events} == {1} and all(e.experiment_id == "gsm8k" and e.rehearsal for e in events)
    (step,) = [e.metrics for e in events if "grad_norm" in e.metrics]  # the one optimizer step
    assert {"loss", "reward", "kl", "grad_norm"} <= set(step)
