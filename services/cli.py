"""The `hypolab` command: a thin typer layer over plain functions in the packages."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from . import __version__
from .endpoints import COORDINATOR_PORT, COORDINATOR_URL
from .trainer.config import TRAIN_FLAGS

app = typer.Typer(
    name="hypolab",
    help="Turn GRPO debugging hypotheses into controlled experiments and verdicts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: every option's full name stays readable at 80 columns
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def require_installed(command: str, modules: dict[str, str]) -> None:
    """Stop in one line (exit 2) when a module the command needs is not installed.

    `modules` maps an import name to what provides it (`verifiers` -> "the legacy stack").
    Called before the command reads any input.
    """
    for module, what in modules.items():
        if importlib.util.find_spec(module) is None:
            typer.echo(f"hypolab {command}: {what} is not installed here (no module {module!r}): "
                       "run `make install`", err=True)
            raise typer.Exit(2)


def bad_input(command: str, message: str) -> None:
    """One line on stderr naming the mistake (and the valid choices), then exit 2."""
    typer.echo(f"hypolab {command}: {message}", err=True)
    raise typer.Exit(2)


def check_choice(command: str, option: str, value: str, choices: Any) -> None:
    if value not in choices:
        bad_input(command, f"unknown {option} {value!r}; choose one of: {', '.join(choices)}")


def runner_choices() -> tuple[str, ...]:
    from typing import get_args

    from .coordinator.config import CoordinatorSettings

    return get_args(CoordinatorSettings.model_fields["runner"].annotation)


@contextlib.contextmanager
def result_only(verbose: bool) -> Iterator[None]:
    """Stdout keeps the command's result: what libraries print goes to stderr (the log), and
    info-level log lines (verifiers sets its own levels, so: all of them) only with --verbose."""
    import logging

    if not verbose:
        logging.disable(logging.INFO)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        logging.disable(logging.NOTSET)


def local_token(db: Path) -> tuple[Path, str | None]:
    """The token file a local coordinator keeps beside its database, and its token (None: no file)."""
    path = db.with_name(db.name + ".token")
    return path, (path.read_text().strip() or None) if path.is_file() else None


TOKEN_WHERE = ("with Docker: docker compose exec coordinator cat /data/hypolab.sqlite.token; "
               "a local coordinator keeps it beside its database (hypolab token --db PATH)")


def writer_token(command: str, token: str | None) -> str:
    """The token given, else the local coordinator's (beside ./hypolab.sqlite); none: one line, exit 2."""
    if token:
        return token
    path, found = local_token(Path("hypolab.sqlite"))
    if found is None:
        bad_input(command, f"no API token: set HYPOLAB_TOKEN ({TOKEN_WHERE}; none at {path})")
    return found


def with_train_flags(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give `func` one option per spec field in TRAIN_FLAGS; they reach it as `flags`.

    The flags are declared once, by the spec (hypolab.trainer.config.FLAG_FIELDS): their
    names, types and help come from the spec's own fields.
    """
    signature = inspect.signature(func, eval_str=True)
    options = []
    for flag in TRAIN_FLAGS:
        name = "--" + flag.name.replace("_", "-")  # a bool field is a switch: --scale-rewards/--no-scale-rewards
        declared = f"{name}/--no-{name[2:]}" if flag.type is bool else name
        option = typer.Option(None, declared, help=flag.help, show_default=False)
        options.append(inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                         annotation=Optional[flag.type]))
    params = []
    for param in signature.parameters.values():
        params += options if param.name == "flags" else [param.replace(kind=inspect.Parameter.KEYWORD_ONLY)]

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        flags = {flag.name: kwargs.pop(flag.name) for flag in TRAIN_FLAGS}
        return func(**kwargs, flags=flags)

    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


@app.command()
def coordinator(
    host: str = typer.Option("127.0.0.1", help="interface to bind (the container binds 0.0.0.0 behind a 127.0.0.1 port)"),
    port: int = typer.Option(COORDINATOR_PORT, min=1, max=65535),
    db: Path = typer.Option(Path("hypolab.sqlite"), help="SQLite database file"),
    runner: str = typer.Option("local", help="local (subprocesses), docker (compose.yaml's services) or ray"),
    ray_address: str = typer.Option("http://127.0.0.1:8265", envvar="RAY_ADDRESS",
                                    help="ray runner: the Ray dashboard (Jobs API) of the cluster's head"),
    rehearsal: bool = typer.Option(False, "--rehearsal", help="ray runner: each job runs the CPU rehearsal"),
    ray_runtime_env: Optional[Path] = typer.Option(
        None, metavar="FILE", help="ray runner: Ray's runtime_env for every job (YAML or JSON: env_vars, ...)"),
    data_dir: Path = typer.Option(Path("."), help="outputs/<experiment>/ go here"),
    public_url: Optional[str] = typer.Option(None, envvar="HYPOLAB_PUBLIC_URL",
                                             help="how workloads reach this coordinator (default http://HOST:PORT)"),
    vllm_url: Optional[str] = typer.Option(None, envvar="VLLM_URL", help="vLLM base URL for health checks"),
    token: Optional[str] = typer.Option(None, envvar="HYPOLAB_TOKEN", show_default=False,
                                        help="API token (generated and saved beside the db when unset)"),
    project: str = typer.Option("hypolab", envvar="COMPOSE_PROJECT_NAME", help="Compose project (docker runner)"),
    private_reads: bool = typer.Option(False, envvar="HYPOLAB_PRIVATE_READS",
                                       help="require the token on read endpoints too"),
) -> None:
    """Run the coordinator (FastAPI) on HOST:PORT; OpenAPI docs at /docs."""
    require_installed("coordinator", {"fastapi": "the coordinator extra", "uvicorn": "the coordinator extra"})
    import uvicorn

    from .coordinator.app import create_app
    from .coordinator.config import CoordinatorSettings

    if runner not in ("local", "docker", "ray"):
        raise typer.BadParameter("choose local, docker or ray", param_hint="--runner")
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    runtime_env = {}
    if ray_runtime_env is not None:
        from .specs import SpecError, read_yaml

        try:
            runtime_env = read_yaml(ray_runtime_env)
        except SpecError as exc:
            bad_input("coordinator", f"--ray-runtime-env {exc}")
    settings = CoordinatorSettings(
        # absolute: workloads run in DATA_DIR and get these paths on their command lines
        db_path=db.resolve(), data_dir=data_dir.resolve(), runner=runner, vllm_url=vllm_url, token=token or None,
        coordinator_url=public_url or f"http://{shown}:{port}", compose_project=project, private_reads=private_reads,
        ray_address=ray_address, rehearsal=rehearsal, ray_runtime_env=runtime_env,
    )
    from .coordinator.runners import RunnerUnavailable, build_runner

    try:  # before serving: an unreachable cluster is bad input, said in one line
        lab_runner = build_runner(settings)
    except RunnerUnavailable as exc:
        typer.echo(f"hypolab coordinator: {exc}", err=True)
        raise typer.Exit(2) from None
    import logging

    ours = logging.getLogger("hypolab")  # the scheduler's own lines (re-attached jobs, ...), as uvicorn's look
    ours.setLevel(logging.INFO)
    ours.addHandler(logging.StreamHandler())
    ours.handlers[-1].setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    uvicorn.run(create_app(settings, runner=lab_runner), host=host, port=port, log_level="info")


@app.command()
def plan(
    hypotheses: list[str] = typer.Argument(..., help="hypothesis ids, e.g. H07"),
    runner: str = typer.Option("local", help="show the workloads as this runner would start them: local, docker or ray"),
    full: bool = typer.Option(False, "--full", help="add each experiment's full config (as it will run)"),
    as_json: bool = typer.Option(False, "--json", help="print the whole plan as JSON"),
) -> None:
    """What will run, where, and what differs: per experiment the runner, GPUs or CPU
    rehearsal, the effective settings, the diff to its control and the verdict rule."""
    from .coordinator.plan_view import render_plan
    from .trainer.config import rehearsal_defaults

    check_choice("plan", "runner", runner, runner_choices())
    raise typer.Exit(render_plan(hypotheses, runner, as_json, full, rehearsal_defaults))


@app.command()
def run(
    hypotheses: list[str] = typer.Argument(..., help="hypothesis ids, e.g. H07"),
    url: str = typer.Option(COORDINATOR_URL, envvar="HYPOLAB_URL", help="coordinator URL"),
    token: Optional[str] = typer.Option(None, envvar="HYPOLAB_TOKEN", show_default=False,
                                        help="API token [default: the one beside ./hypolab.sqlite]"),
    follow: bool = typer.Option(True, help="follow progress until the hypotheses have verdicts"),
    timeout: float = typer.Option(0, help="stop following after this many seconds (0: never)"),
) -> None:
    """Submit hypotheses to the coordinator and follow them with a live progress display."""
    from .coordinator.client import follow_run

    raise typer.Exit(follow_run(url, writer_token("run", token), hypotheses, follow=follow, timeout_s=timeout))


@app.command()
def token(db: Path = typer.Option(Path("hypolab.sqlite"), help="the local coordinator's database")) -> None:
    """Print a local coordinator's API token: export HYPOLAB_TOKEN=$(hypolab token)."""
    path, found = local_token(db)
    if found is None:
        bad_input("token", f"no token file at {path}: start the coordinator once (it writes one); {TOKEN_WHERE}")
    typer.echo(found)


@app.command()
def status(url: str = typer.Option(COORDINATOR_URL, envvar="HYPOLAB_URL", help="coordinator URL"),
           token: Optional[str] = typer.Option(None, envvar="HYPOLAB_TOKEN", show_default=False)) -> None:
    """Print the hypothesis board: status, verdict and experiments of every hypothesis."""
    from .coordinator.client import print_board

    raise typer.Exit(print_board(url, token))


@app.command()
def cancel(
    experiment: str = typer.Argument(..., help="the experiment's id, e.g. H07.math-python"),
    url: str = typer.Option(COORDINATOR_URL, envvar="HYPOLAB_URL", help="coordinator URL"),
    token: Optional[str] = typer.Option(None, envvar="HYPOLAB_TOKEN", show_default=False,
                                        help="API token [default: the one beside ./hypolab.sqlite]"),
) -> None:
    """Cancel a queued or running experiment (its workload is stopped)."""
    from .coordinator.client import cancel_experiment

    raise typer.Exit(cancel_experiment(url, writer_token("cancel", token), experiment))


@app.command()
def verdict(
    metrics: Path = typer.Option(..., exists=True, dir_okay=False,
                                 help="metrics file: MetricEvents or step/name/value JSONL, "
                                      "trainer_state.json, W&B history CSV, TRL progress table"),
    metric: str = typer.Option("reward", help="which metric (any column) to judge"),
    min_effect: Optional[float] = typer.Option(
        None, min=0.0, help="smallest improvement that matters, in the metric's units "
                            "[default: half the baseline's step sd; 5% of --reward-range]"),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5, help="error rate, valid under continuous monitoring"),
    control: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                           help="a control run's metrics: decide whether METRICS beats it"),
    horizon: Optional[int] = typer.Option(None, min=1, help="the run's planned number of steps "
                                          "[default: the file's last step]"),
    futility_after: Optional[int] = typer.Option(None, min=1, help="allow no_improvement from this step"),
    reward_range: Optional[tuple[float, float]] = typer.Option(
        None, metavar="LO HI", help="the environment's reward range: exact bounded methods"),
    groups: Optional[int] = typer.Option(None, min=1, help="independent prompt groups per step "
                                         "(batch x processes x accumulation / generations)"),
    as_json: bool = typer.Option(False, "--json", help="print the decision as JSON"),
) -> None:
    """Decide from a metric stream: improves, no_improvement or inconclusive (anytime-valid)."""
    from .verdicts.command import VerdictInputError, verdict_from_files

    try:
        report = verdict_from_files(metrics, metric, control, min_effect=min_effect, alpha=alpha, horizon=horizon,
                                    reward_range=reward_range, groups=groups, futility_after=futility_after)
    except VerdictInputError as exc:
        typer.echo(f"verdict: {exc}", err=True)
        raise typer.Exit(2)
    for warning in report.warnings:
        typer.echo(f"verdict: {warning}", err=True)
    typer.echo(report.decision.model_dump_json() if as_json else report.line())


@app.command()
def preflight(as_json: bool = typer.Option(False, "--json", help="print the probe and plan as JSON")) -> None:
    """Check Docker, Compose v2, the NVIDIA runtime and `.env`; say what `make up` would start."""
    from .stack.preflight import preflight as run_preflight
    from .stack.settings import SettingError

    try:
        _, probe, plan = run_preflight()
    except SettingError as exc:
        typer.echo(f"preflight: {exc}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps({"probe": probe.model_dump(), "plan": plan.model_dump()}, indent=2))
        return
    typer.echo(f"docker: {probe.docker_detail}; compose: {probe.compose_version or 'missing'}; "
               f"nvidia runtime: {'yes' if probe.nvidia_runtime else 'no'}; GPUs: {probe.gpus}")
    typer.echo(f"plan: {plan.mode} -> {', '.join(plan.services)}")
    if plan.explanation:
        typer.echo(plan.explanation)


@app.command()
def up() -> None:
    """Preflight, then start the stack (or the embedded default) and wait until healthy."""
    from .stack.up import up as do_up

    raise typer.Exit(do_up())


@app.command()
def health(url: str = typer.Option(COORDINATOR_URL, envvar="HYPOLAB_URL")) -> None:
    """Ask a running coordinator for its health (`GET /api/health`)."""
    import httpx

    try:
        resp = httpx.get(url.rstrip("/") + "/api/health", timeout=5)
    except httpx.HTTPError as exc:
        typer.echo(f"coordinator at {url} unreachable: {type(exc).__name__}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(resp.json(), indent=2))
    raise typer.Exit(0 if resp.status_code == 200 else 1)


@app.command()
@with_train_flags
def train(
    spec: Path = typer.Option(..., "--spec", help="experiment spec, e.g. configs/experiments/math-python.yaml"),
    set_: list[str] = typer.Option([], "--set", help="override any spec key: --set training.max_steps=50"),
    experiment_id: Optional[str] = typer.Option(None, envvar="HYPOLAB_EXPERIMENT_ID", help="default: the spec's name"),
    coordinator: Optional[str] = typer.Option(None, envvar="HYPOLAB_COORDINATOR", help="coordinator URL for metrics"),
    output_dir: Optional[Path] = typer.Option(None, help="default: outputs/<experiment-id>"),
    vllm_url: Optional[str] = typer.Option(None, envvar="VLLM_URL", help="default: http://vllm:8000"),
    rehearsal: bool = typer.Option(False, "--rehearsal", help="CPU rehearsal: tiny model, scripted policy, no weight sync"),
    seed: int = typer.Option(0, "--seed", min=0, help="a rehearsal's scripted policy seed (recorded)"),
    flags: dict[str, Any] = {},  # the spec's fields as flags (with_train_flags): --batch-size, --lora-r, ...
    no_peft: bool = typer.Option(False, "--no-peft", help="full fine-tuning: sets training.lora to null"),
    check_only: bool = typer.Option(False, "--check", help="resolve and check, print the config, do not train"),
    verbose: bool = typer.Option(False, "--verbose", help="the libraries' info log lines too (on stderr)"),
) -> None:
    """Train one experiment with the installed stack's own verifiers trainer (run under accelerate launch)."""
    require_installed("train", {"verifiers": "a stack (verifiers, legacy or current)"})
    from .trainer.adapters import StackMismatch
    from .trainer.config import RunError, check_run, resolve_run

    try:
        run = resolve_run(spec, set_, {**flags, "no_peft": no_peft}, experiment_id, output_dir, coordinator,
                          vllm_url, rehearsal, seed=seed)
        if check_only:
            check_run(run)
            typer.echo(run.model_dump_json(indent=2))
            return
        from .trainer.run import train as run_training

        with result_only(verbose):  # stdout: the summary alone
            summary = run_training(run)
    except (RunError, StackMismatch) as exc:
        typer.echo(f"hypolab train: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command()
def launch(
    spec: Path = typer.Option(..., "--spec", help="experiment spec, e.g. configs/experiments/gsm8k.yaml"),
    rehearsal: bool = typer.Option(False, "--rehearsal", help="the CPU rehearsal alone (no vLLM, no GPU)"),
    experiment_id: Optional[str] = typer.Option(None, envvar="HYPOLAB_EXPERIMENT_ID", help="default: the spec's name"),
    coordinator: Optional[str] = typer.Option(None, envvar="HYPOLAB_COORDINATOR", help="coordinator URL for metrics"),
    output_dir: Optional[Path] = typer.Option(None, help="default: outputs/<experiment-id>"),
    vllm_port: int = typer.Option(8000, min=1, max=65535, help="vLLM's port on this node (127.0.0.1)"),
    check_only: bool = typer.Option(False, "--check", help="print the commands, start nothing"),
) -> None:
    """One experiment on this node without Docker: vf-vllm on the first GPU, the trainer on the next."""
    from .trainer.launch import LaunchError, plan_launch, run_workloads

    try:
        plan = plan_launch(spec, rehearsal=rehearsal, experiment_id=experiment_id, coordinator=coordinator,
                           output_dir=output_dir, vllm_port=vllm_port)
    except LaunchError as exc:
        typer.echo(f"hypolab launch: {exc}", err=True)
        raise typer.Exit(2) from None
    if check_only:
        typer.echo(plan.model_dump_json(indent=2))
        return
    raise typer.Exit(run_workloads(plan))


@app.command()
def audit(
    env: Optional[str] = typer.Option(None, "--env", help="default: the rollouts file's metadata env"),
    stack: str = typer.Option("legacy", "--stack", help="whose processing builds the training sequences"),
    rollouts: Optional[Path] = typer.Option(None, "--rollouts", help="vf-eval results.jsonl or its run directory"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="a live vLLM's OpenAI URL (http://host:8000/v1)"),
    model: Optional[str] = typer.Option(None, "--model", help="model name served at --base-url"),
    scripted: bool = typer.Option(False, "--scripted", help="the scripted policy + a one-step CPU rehearsal for attention"),
    tokenizer: str = typer.Option("qwen2.5", "--tokenizer", help="qwen2.5 (offline) or a Hugging Face name/path"),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="environments side by side (H07 method 2)"),
    trainer_masks: Optional[Path] = typer.Option(None, "--trainer-masks", help="a rehearsal's audit_hook.json"),
    env_args: Optional[str] = typer.Option(None, "--env-args", help='JSON for the environment, e.g. {"dataset_path": "x.jsonl"}'),
    max_seq_len: int = typer.Option(4096, "--max-seq-len", min=1),
    max_model_len: int = typer.Option(8192, "--max-model-len", min=1),
    num_examples: int = typer.Option(4, "--num-examples", min=1),
    seed: int = typer.Option(0, "--seed", min=0, help="--scripted: the scripted policy's seed (recorded)"),
    verbose: bool = typer.Option(False, "--verbose", help="the libraries' info log lines too (on stderr)"),
    no_replay: bool = typer.Option(False, "--no-replay", help="rollouts file: skip the trainer replay (no attention)"),
    replay_rollouts: int = typer.Option(4, "--replay-rollouts", min=2, help="rollouts file: how many to replay"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the AuditReport (a list with --compare)"),
    html_out: Optional[Path] = typer.Option(None, "--html", help="write one HTML page"),
    extra_envs: list[str] = typer.Argument(None, help="with --compare: more environments"),
) -> None:
    """Audit the training sequences a stack builds (masking, headers, truncation, reward spread)."""
    from .audits import AuditInputError, AuditOptions, audit_all, show_reports

    envs = list(compare or []) + list(extra_envs or []) or ([env] if env else [])
    try:
        extra_args = json.loads(env_args) if env_args else None
        opts = AuditOptions(env=env, stack=stack, rollouts_file=rollouts, base_url=base_url, model=model,
                            scripted=scripted, tokenizer=tokenizer, trainer_masks=trainer_masks, env_args=extra_args,
                            # the audit's rehearsal / replay step lives next to its report (one per experiment)
                            work_dir=json_out.parent if json_out else Path("outputs/audit"),
                            max_seq_len=max_seq_len, max_model_len=max_model_len, num_examples=num_examples,
                            replay=not no_replay, replay_rollouts=replay_rollouts, seed=seed)
        with result_only(verbose):  # stdout: the reports alone (trainer chatter to stderr)
            reports = audit_all(envs, opts)
    except json.JSONDecodeError as exc:
        typer.echo(f"hypolab audit: --env-args is not JSON: {exc.msg}", err=True)
        raise typer.Exit(2) from None
    except AuditInputError as exc:
        typer.echo(f"hypolab audit: {exc}", err=True)
        raise typer.Exit(2) from None
    show_reports(reports, json_out, html_out)


@app.command()
def demo(directory: Path = typer.Option(Path("outputs/demo"), "--dir", help="database, outputs and the report go here"),
         timeout_s: float = typer.Option(1800, help="stop following after this many seconds"),
         hypothesis: str = typer.Option("H07", "--hypothesis", help="H07 (default) or H90, the learning rehearsal")) -> None:
    """The embedded default on CPU: a local coordinator runs H06+H07 as rehearsals and real audits."""
    require_installed("demo", {"verifiers": "the legacy stack (verifiers==0.1.3.post0)", "fastapi": "the coordinator extra"})
    from .demo import INTROS, run_demo

    if hypothesis not in INTROS:
        bad_input("demo", f"no demo for hypothesis {hypothesis!r}; choose one of {', '.join(INTROS)}")

    raise typer.Exit(run_demo(directory, timeout_s, hypothesis=hypothesis))


@app.command()
def version() -> None:
    """Print hypolab's version."""
    typer.echo(__version__)


#: typer's type tags (`<list[str]>`, `<float range>`) as the plain metavars help readers know
PLAIN_METAVARS = {"str": "TEXT", "list[str]": "TEXT", "int": "N", "int range": "N", "float": "X",
                  "float range": "X", "path": "PATH", "file": "FILE", "directory": "DIR"}


def plain_help(command: Any) -> Any:
    """The click command with plain metavars (TEXT, N, X, PATH) on every option and argument."""
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    for param in getattr(command, "params", []):
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        if param.param_type_name == "argument":  # its name says it all: no tag after it
            param.metavar = param.name.upper()
            param.display_type_rich = lambda ctx: None
            continue
        tag = param.display_type(None).strip("<>")
        param.metavar = PLAIN_METAVARS.get(tag, tag.upper() if "|" not in tag else f"[{tag}]")
    return command


def main() -> None:
    """The command, with a usage mistake said in one line: what is wrong, and where help is."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # a typer that does not vendor click
        from click.exceptions import ClickException
    command = plain_help(typer.main.get_command(app))
    try:
        code = command.main(prog_name="hypolab", standalone_mode=False)
    except ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "hypolab"
        if exc.exit_code == 2 and ctx is not None and not ctx.args and not ctx.params and not sys.argv[1:]:
            typer.echo(ctx.get_help())  # `hypolab` alone: the help, as before
        else:
            message = exc.format_message()
            if message.startswith("No such command"):
                message += f" Commands: {', '.join(getattr(command, 'commands', {}))}."
            typer.echo(f"{where}: {message} (see {where} -h)", err=True)
        raise SystemExit(exc.exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)
