"""`hypolab train`: resolve, check, build the stack's trainer, train, report.

Order matters: everything that can be refused is refused before a model is loaded
(config.check_run), the resolved config is written and sent before the first step,
and SIGTERM (the coordinator's early stop) ends training after the current step with
metrics flushed and a checkpoint written.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .adapters import adapter_for, stop_generation_threads
from .config import RunConfig, check_run, write_resolved
from .reporter import MetricReporter, make_callback, reporter_from_env

log = logging.getLogger("hypolab.trainer")


def _env_args(run: RunConfig) -> dict[str, Any]:
    from .envs.common import sample_path

    args = dict(run.spec.env_args)
    if run.rehearsal and "dataset_path" not in args:
        args["dataset_path"] = str(sample_path(run.spec.env))  # no hub download in a rehearsal
    return args


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("verifiers", "transformers", "trl", "peft", "accelerate", "torch", "deepspeed", "vllm"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _stop_on_sigterm(trainer: Any) -> None:
    """SIGTERM: finish this step, save, stop (the transformers way: control flags)."""
    from transformers import TrainerCallback

    state = {"stop": False}

    def handler(signum: int, frame: Any) -> None:
        log.warning("SIGTERM: stopping after this step (checkpoint + flush)")
        state["stop"] = True

    signal.signal(signal.SIGTERM, handler)

    class StopCallback(TrainerCallback):
        def on_step_end(self, args, state_, control, **kwargs):  # noqa: ANN001
            if state["stop"]:
                control.should_save = True
                control.should_training_stop = True

    trainer.add_callback(StopCallback())


def train(run: RunConfig, reporter: MetricReporter | None = None, audit_steps: int = 1) -> dict[str, Any]:
    """Run one training; returns a summary (steps, last metrics, where things were written)."""
    check_run(run)
    adapter = adapter_for(run.spec.stack)
    run.library = _versions()
    out = Path(run.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    reporter = reporter or reporter_from_env(run.experiment_id, out, run.coordinator, run.rehearsal)
    try:
        return _train(run, adapter, reporter, out, audit_steps)
    finally:
        reporter.close()


def _model_path(run: RunConfig, out: Path, learns: bool) -> str:
    """The model to load, with the weight-sync client the run needs installed first."""
    if learns:  # the real SmolLM2 on CPU, weight sync over HTTP (learning.py)
        from .smollm import model_dir
        from .weight_sync import install_http_sync

        install_http_sync()
        return str(model_dir())
    if run.rehearsal:
        from .rehearsal import install_no_sync, tiny_model

        install_no_sync()
        return str(tiny_model(out / "tiny-model"))
    return run.spec.model


def _rehearsal_server(run: RunConfig, learns: bool, model_path: Path, tokenizer: Any, env: Any) -> Any:
    """A rehearsal's generation engine on 127.0.0.1, started (None: vLLM serves this run)."""
    if learns:
        from .policy_server import PolicyServer

        return PolicyServer(model_path).__enter__()
    if run.rehearsal:
        from .scripted_policy import ScriptedPolicy, ScriptedServer, examples_from_dataset

        return ScriptedServer(tokenizer, ScriptedPolicy(examples_from_dataset(env.dataset), seed=run.seed)).__enter__()
    return None


def _train(run: RunConfig, adapter: Any, reporter: MetricReporter, out: Path, audit_steps: int) -> dict[str, Any]:
    import verifiers as vf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .audit_hook import AuditHook
    from .audit_hook import make_callback as audit_callback

    from . import learning

    spec = run.spec
    trainer = None
    learns = learning.is_learning(run)
    model_path = _model_path(run, out, learns)
    env = vf.load_environment(spec.env, **_env_args(run))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    server = _rehearsal_server(run, learns, Path(model_path), tokenizer, env)
    if server is not None:
        host, port = "127.0.0.1", server.port
    else:
        url = urlparse(run.vllm_url)
        host, port = url.hostname or "vllm", url.port or 8000
    try:
        args, lora = adapter.build(spec, output_dir=str(out), run_name=run.experiment_id,
                                   vllm_host=host, vllm_port=port, cpu=run.rehearsal)
        if learns:
            args = learning.tune_args(args)
        run.trainer_config = {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                              for k, v in args.to_dict().items()}
        run.trainer_config["peft_config"] = None if lora is None else {
            "r": lora.r, "lora_alpha": lora.lora_alpha, "lora_dropout": lora.lora_dropout,
            "target_modules": sorted(lora.target_modules)}
        write_resolved(run)
        reporter.post_json(f"/api/experiments/{run.experiment_id}/config", json.loads(run.model_dump_json()))
        model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype="auto")
        hook = AuditHook(spec.stack, tokenizer, steps=audit_steps)

        def send_report(_: dict[str, float]) -> None:  # once the hook has its steps
            report = hook.report(spec.env, run.rehearsal)
            (out / "audit_hook_report.json").write_text(report.model_dump_json(indent=1))
            reporter.post_json(f"/api/experiments/{run.experiment_id}/report", report.model_dump(mode="json"))

        callbacks = [make_callback(reporter), audit_callback(hook, reporter, send_report)]
        if learns:
            t = spec.training
            groups = t.batch_size * t.num_processes * t.gradient_accumulation_steps // t.num_generations
            rule = learning.hypothesis_rule(Path(run.spec_file).stem, run.experiment_id)
            callbacks.append(learning.live_verdict_callback(rule, groups, out))
            probe = learning.fixed_sequence(env, tokenizer)
            probe_before = learning.server_logprobs(server.port, probe, t.temperature)[0]
        trainer = adapter.make_trainer(model, env, args, tokenizer, lora, callbacks)
        hook.install(trainer)
        _stop_on_sigterm(trainer)
        result = trainer.train()
        if hook.masks.sequences:
            hook.write(out / "audit_hook.json")
        if not run.rehearsal:
            trainer.save_model(str(out / "final"))
        summary = {"experiment_id": run.experiment_id, "rehearsal": run.rehearsal,
                   "global_step": trainer.state.global_step, "training_loss": result.training_loss,
                   "output_dir": str(out), "metrics_file": str(reporter.jsonl),
                   "audit": hook.metrics() if hook.masks.sequences else None}
        if learns:
            live = callbacks[-1]
            summary["live_verdict"] = live.decision
            summary["weight_sync"] = learning.sync_check(trainer, server, probe, probe_before, t.temperature)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary
    finally:
        stop_generation_threads(trainer)
        if server is not None:
            server.__exit__(None, None, None)

