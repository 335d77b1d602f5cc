"""The CPU rehearsal's pins (docker/stacks/cpu/legacy.txt) are the legacy stack's."""

from hypolab.paths import ROOT


def pins(name):
    out = {}
    for line in (ROOT / "docker" / "stacks" / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            pkg, version = line.split("==")
            out[pkg] = version
    return out


def test_cpu_pins_follow_the_legacy_stack():
    cpu, gpu = pins("cpu/legacy.txt"), pins("legacy.txt")
    shared = set(cpu) & set(gpu) - {"torch"}  # torch: the CPU build here, the CUDA one in the image
    assert {"verifiers", "trl", "transformers", "peft", "accelerate"} <= shared
    assert all(cpu[p] == gpu[p] for p in shared)
