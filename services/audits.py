"""`hypolab audit`: rollouts from a file, a live vLLM or the scripted policy -> AuditReport.

Rollouts are produced by the environment's own rollout code (scripted / live) or read
from a rollouts file as `vf-eval` wrote it (audit/rollouts.py); the stack's own
processing builds the training sequences; attention facts come from the trainer's
masks: `--trainer-masks FILE` (a rehearsal's audit_hook.json); with `--scripted`, a
one-step CPU rehearsal of the real trainer run here; for a rollouts file, a bounded
replay of its own rollouts through the stack's trainer (trainer/replay.py), which
`--no-replay` skips (the report then says attention was not observed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .contracts import AuditReport, Replay
from .audit.findings import TrainerMasks, audit_samples
from .audit.processing import build_samples, reference_ids
from .audit.rollouts import Grouping, Rollout, Skipped, read_file
from .trainer.adapters import STACK_VERIFIERS, installed_verifiers

#: rollouts of a file replayed through the trainer by default (pairs of one group)
REPLAY_ROLLOUTS = 4


@dataclass
class AuditOptions:
    env: str | None = None  # with a rollouts file: its metadata's env when not given
    stack: str = "legacy"
    rollouts_file: Path | None = None
    base_url: str | None = None
    model: str | None = None
    scripted: bool = False
    tokenizer: str = "qwen2.5"
    num_examples: int = 4
    num_generations: int = 4
    max_seq_len: int = 4096
    max_model_len: int = 8192
    max_tokens: int = 1024
    mask_env_responses: bool = True
    trainer_masks: Path | None = None
    rehearse: bool = True  # with --scripted and no --trainer-masks: run one rehearsal step
    env_args: dict[str, Any] | None = None  # passed to vf.load_environment (e.g. dataset_path)
    work_dir: Path = Path("outputs/audit")
    replay: bool = True  # a rollouts file: observe attention by replaying a sample through the trainer
    replay_rollouts: int = REPLAY_ROLLOUTS
    seed: int = 0  # the scripted policy's seed (recorded in the report)


def stack_problem(stack: str) -> str | None:
    """Why this interpreter cannot audit `stack` (its verifiers is not the one installed), or None."""
    if stack not in STACK_VERIFIERS:
        return f"unknown stack {stack!r} (legacy or current)"
    wanted = STACK_VERIFIERS[stack][0]
    have = installed_verifiers()
    if have == wanted:
        return None
    venv = ".venv-current" if stack == "current" else ".venv"
    return (f"the {stack} stack needs verifiers=={wanted}, this interpreter has "
            f"{'no verifiers' if have is None else 'verifiers==' + have}: run `make install` and use {venv}/bin/hypolab")


def generate_rollouts(opts: AuditOptions, tokenizer: Any) -> list[Rollout]:
    """Run the environment's real rollouts against the scripted policy or a live server."""
    import verifiers as vf
    from openai import AsyncOpenAI

    from .trainer.envs.common import sample_path
    from .trainer.scripted_policy import ScriptedPolicy, ScriptedServer, examples_from_dataset

    env_args: dict[str, Any] = dict(opts.env_args or {})
    if opts.scripted and "dataset_path" not in env_args:
        env_args["dataset_path"] = str(sample_path(opts.env))
    env = vf.load_environment(opts.env, **env_args)
    ds = env.get_dataset(n=opts.num_examples)
    k = opts.num_generations
    inputs = {col: [row for row in ds[col] for _ in range(k)] for col in ("prompt", "answer", "info", "task") if col in ds.column_names}
    sampling = {"temperature": 1.0, "max_tokens": opts.max_tokens, "logprobs": True,
                "extra_body": {"return_tokens_as_token_ids": True, "skip_special_tokens": False,
                               "include_stop_str_in_output": False, "return_token_ids": True}}
    server = None
    if opts.scripted:
        server = ScriptedServer(tokenizer, ScriptedPolicy(examples_from_dataset(env.dataset), seed=opts.seed)).__enter__()
        client, model = AsyncOpenAI(base_url=server.base_url, api_key="scripted"), "scripted"
    else:
        client, model = AsyncOpenAI(base_url=opts.base_url, api_key="EMPTY"), opts.model or "model"
    try:
        if hasattr(env, "generate_sync"):  # verifiers 0.1.9: async generate, a list of inputs
            rows = [dict(zip(inputs, values), example_id=n // k) for n, values in enumerate(zip(*inputs.values()))]
            out = env.generate_sync(rows, client=client, model=model, sampling_args=sampling, use_tqdm=False)
            results = [(out["prompt"][n], out["completion"][n], [step["response"] for step in out["state"][n]["trajectory"]],
                        out["reward"][n]) for n in range(len(rows))]
        else:  # verifiers 0.1.3: columns in, GenerateOutputs with state["responses"] out
            out = env.generate(inputs, client=client, model=model, sampling_args=sampling)
            results = [(p, c, st.get("responses", []), rw) for p, c, st, rw in zip(out.prompt, out.completion, out.state, out.reward)]
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    rollouts = []
    tools = getattr(env, "oai_tools", None) or None
    for i, (prompt, completion, responses, reward) in enumerate(results):
        sampled, prompt_ids, reasons = [], [], []
        for resp in responses:
            choice = resp.choices[0]
            reasons.append(choice.finish_reason or "stop")
            sampled.append([int(t.token.split(":")[-1]) for t in choice.logprobs.content])
            prompt_ids.append(getattr(resp, "prompt_token_ids", None))
        rollouts.append(Rollout(
            prompt=list(prompt), completion=[_plain(m) for m in completion], reward=float(reward),
            group=f"g{i // k}", tools=tools, finish_reasons=reasons, sampled_ids=sampled,
            prompt_ids_per_turn=prompt_ids if all(p is not None for p in prompt_ids) else None))
    # Within a group, which rollout got which draws depends on the order concurrent requests
    # arrived: a canonical order makes identical inputs give identical reports, examples included.
    canonical = lambda r: (int(r.group[1:]), json.dumps(r.completion, sort_keys=True, default=str))  # noqa: E731
    return sorted(rollouts, key=canonical)


def _plain(m: dict[str, Any]) -> dict[str, Any]:
    m = dict(m)
    if m.get("tool_calls"):
        m["tool_calls"] = [c if isinstance(c, dict) else c.model_dump() for c in m["tool_calls"]]
    return m


def rehearsal_masks(opts: AuditOptions) -> TrainerMasks | None:
    """One step of the real trainer on CPU (rehearsal); its hook's recorded tensors."""
    from .trainer.adapters import installed_verifiers, STACK_VERIFIERS
    from .trainer.config import resolve_run
    from .trainer.reporter import MetricReporter
    from .trainer.run import train
    from .specs import EXPERIMENTS_DIR

    if installed_verifiers() != STACK_VERIFIERS[opts.stack][0]:
        return None
    spec = EXPERIMENTS_DIR / f"{opts.env}.yaml"
    out = opts.work_dir / f"rehearsal-{opts.env}-{opts.stack}"
    sets = [f"stack={opts.stack}", "training.batch_size=4", "training.num_generations=4"]
    if opts.stack == "current":  # RLTrainer has none of the legacy-only knobs
        sets += ["training.beta=null", "training.loss_type=null", "training.scale_rewards=null"]
    run = resolve_run(spec, sets,
                      {"max_steps": 1}, f"audit-{opts.env}", out, None, None, rehearsal=True, seed=opts.seed)
    # its own step, not an experiment of the coordinator's: nothing is posted (the audit's
    # workload has HYPOLAB_COORDINATOR in its environment, which train() would otherwise use)
    train(run, reporter=MetricReporter(run.experiment_id, out, None, None, rehearsal=True))
    path = out / "audit_hook.json"
    return TrainerMasks.from_json(json.loads(path.read_text())) if path.exists() else None


def _build(opts: AuditOptions, rollouts: list[Rollout], tokenizer: Any, skipped: list[Skipped]) -> tuple[list[Rollout], list[Any]]:
    """The stack's training samples; a rollout the stack refuses, or too long for the model, is skipped."""
    kept, samples = [], []
    for r in rollouts:
        try:
            built = build_samples(opts.stack, [r], tokenizer, opts.max_seq_len, opts.mask_env_responses)
        except Exception as exc:  # the stack's own processing refused it (e.g. a prefix mismatch)
            skipped.append(Skipped(r.line or 0, f"the {opts.stack} stack could not process it: {exc}"[:300]))
            continue
        length = max([len(reference_ids(r, tokenizer))] + [len(s.ids) for s in built])  # before any truncation
        if length > opts.max_model_len:
            skipped.append(Skipped(r.line or 0, f"{length} tokens: longer than max_model_len {opts.max_model_len}"))
            continue
        for s in built:
            s.rollout = len(kept)
        kept.append(r)
        samples.extend(built)
    return kept, samples


def replay_masks(opts: AuditOptions, rollouts: list[Rollout]) -> tuple[TrainerMasks | None, Replay]:
    """Attention for a rollouts file: a bounded replay through the stack's trainer (or why there is none)."""
    if not opts.replay:
        return None, Replay(observed=False, note="skipped with --no-replay")
    from .trainer.replay import replay

    try:
        result = replay(opts.stack, rollouts, opts.work_dir, limit=opts.replay_rollouts,
                        max_seq_len=opts.max_seq_len, mask_env_responses=opts.mask_env_responses)
    except Exception as exc:  # the audit's other findings stand; say why attention is missing
        return None, Replay(observed=False, note=f"the replay failed: {type(exc).__name__}: {exc}"[:300])
    return result.masks, Replay(observed=True, trainer=result.trainer, rollouts=len(result.rollouts),
                                lines=[rollouts[i].line or 0 for i in result.rollouts], sequences=result.sequences,
                                seconds=result.seconds, cpus=result.cpus)


def run_audit(opts: AuditOptions) -> AuditReport:
    from .audit.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(opts.tokenizer)
    skipped: list[Skipped] = []
    grouping: Grouping | None = None
    lines = 0
    env = opts.env or "unknown"
    if opts.rollouts_file is not None:
        read = read_file(opts.rollouts_file)  # NoAuditableLines: nothing in it can be audited
        rollouts, skipped, grouping, lines = read.rollouts, list(read.skipped), read.grouping, read.lines
        # --env, else metadata.json's env, else vf-eval's `<env>--<model>` naming
        env = opts.env or read.env or (read.path.name.split("--")[0] if "--" in read.path.name else "unknown")
        source = f"file {read.path}" + (f" (metadata: {read.metadata_path.name})" if read.metadata_path else "")
    else:
        rollouts = generate_rollouts(opts, tokenizer)
        source = "scripted policy" if opts.scripted else f"live {opts.base_url}"
    kept, samples = _build(opts, rollouts, tokenizer, skipped)
    masks, replay_info = None, None
    if opts.trainer_masks is not None:
        masks = TrainerMasks.from_json(json.loads(Path(opts.trainer_masks).read_text()))
    elif opts.scripted and opts.rehearse:
        masks = rehearsal_masks(opts)
    elif opts.rollouts_file is not None and kept:
        masks, replay_info = replay_masks(opts, kept)
    report = audit_samples(env=env, stack=opts.stack, rollouts=kept, samples=samples, tokenizer=tokenizer,
                           max_seq_len=opts.max_seq_len, max_model_len=opts.max_model_len, masks=masks,
                           skipped=skipped, rehearsal=opts.scripted, source=source, grouping=grouping,
                           lines=lines, replay=replay_info)
    return report.model_copy(update={"seed": opts.seed}) if opts.scripted else report


class AuditInputError(ValueError):
    """Input `hypolab audit` cannot use: one line for the user (exit 2)."""


def audit_all(envs: list[str], opts: AuditOptions) -> list[AuditReport]:
    """The CLI's work: check the stack and the sources before reading anything, then one report per env."""
    from dataclasses import replace

    from .audit.rollouts import NoAuditableLines
    from .audit.tokenizer import TokenizerError

    problem = stack_problem(opts.stack)
    if problem:
        raise AuditInputError(problem)
    sources = sum([opts.rollouts_file is not None, opts.base_url is not None, opts.scripted])
    if sources > 1:
        raise AuditInputError("choose one source: --rollouts, --base-url or --scripted")
    if sources == 0:
        opts = replace(opts, scripted=True)
    if opts.rollouts_file is not None and not opts.rollouts_file.exists():
        raise AuditInputError(f"--rollouts {opts.rollouts_file} does not exist")
    if not envs and opts.rollouts_file is None:
        raise AuditInputError("name an environment with --env, or several with --compare")
    if opts.rollouts_file is None:  # generated rollouts need an environment hypolab ships
        from .trainer.envs import ENVIRONMENTS

        unknown = [name for name in envs if name not in ENVIRONMENTS]
        if unknown:
            raise AuditInputError(f"unknown environment {unknown[0]!r}: choose one of {', '.join(ENVIRONMENTS)} "
                                  "(a rollouts file of any environment: --rollouts PATH)")
    try:
        return [run_audit(replace(opts, env=name)) for name in (envs or [opts.env])]
    except (TokenizerError, NoAuditableLines, FileNotFoundError) as exc:
        raise AuditInputError(str(exc)) from None


def show_reports(reports: list[AuditReport], json_out: Path | None, html_out: Path | None) -> None:
    """Print the reports (findings with their units, skipped lines) and write --json / --html."""
    from rich.console import Console

    from .audit.compare_page import compare_table, html_page, print_report

    console = Console()
    if len(reports) > 1:
        console.print(compare_table(reports))
    else:
        print_report(reports[0], console)
    for r in reports:
        for s in r.skipped:
            console.print(f"skipped line {s.line}: {s.problem}", highlight=False)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        data = [r.model_dump(mode="json") for r in reports]
        json_out.write_text(json.dumps(data if len(reports) > 1 else data[0], indent=1))
        console.print(f"report: {json_out}")
    if html_out:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(html_page(reports))
        console.print(f"html: {html_out}")
