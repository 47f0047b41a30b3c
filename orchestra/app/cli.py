"""The `orchestra` command.

orchestra demo            # offline: replay recorded outputs under several configurations (--data PATH)
orchestra sweep FILE      # run or resume a sweep of configurations (--dry-run to plan; --backend ray)
orchestra check           # validate each provider's key and endpoint
orchestra improve         # learn a router from logged calls, write back an improved config
orchestra improve rollback  # restore the config before the last write-back
orchestra improve prompts --task-type T  # propose better system prompts, keep one that passes the gate
orchestra experiment status NAME  # an experiment's arms, always-valid estimate, SRM, guardrails, decision
orchestra plugins         # list the plugins installed packages provide
orchestra ui              # start the MLflow UI on the configured store (loopback)
orchestra traces RUN_ID   # write a run's deferred traces from its request table
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import traceback

from orchestra.errors import OrchestraError
from orchestra.redact import redacted_output


def main(argv: list[str] | None = None) -> int:
    """Run a command; whatever it prints (errors and tracebacks too) has secrets masked."""
    with redacted_output():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    parser = argparse.ArgumentParser(prog="orchestra", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile",
        default=None,
        help="the mlflow.yaml profile to log to (e.g. team); sets ORCHESTRA_PROFILE",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="replay recorded model outputs under several configurations")
    demo.add_argument("--config", default=None, help="default: ./config.yaml, else the packaged demo config")
    demo.add_argument("--data", default=None, help="the recorded table to replay (e.g. responses.parquet)")
    demo.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    demo.add_argument("--concurrency", type=int, default=64)

    check = commands.add_parser("check", help="validate each configured provider's key and endpoint")
    check.add_argument("--config", default="config.yaml")

    sweep = commands.add_parser("sweep", help="run (or resume) an experiment sweep: experiments/NAME.yaml")
    sweep.add_argument("path")
    sweep.add_argument(
        "--dry-run", action="store_true", help="print the arms, the calls and the expected cost"
    )
    sweep.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="where the arms run")
    sweep.add_argument(
        "--address", default=None, help="Ray cluster: auto, ray://HOST:10001 (default: a local one)"
    )
    sweep.add_argument(
        "--workers", type=int, default=None, help="Ray: shards running at once (default: CPUs)"
    )
    sweep.add_argument(
        "--shard-size", type=int, default=None, help="Ray: prompts per task (default: a whole arm)"
    )

    improve = commands.add_parser(
        "improve", help="learn a router from logged calls; write back a better config"
    )
    improve.add_argument("action", nargs="?", choices=["run", "rollback", "prompts"], default="run")
    improve.add_argument("--config", default="config.yaml")
    improve.add_argument("--tracking", default=None, help="mlflow.yaml (default: beside the config)")
    improve.add_argument("--runs", nargs="*", default=None, help="learn from these runs (default: all)")
    improve.add_argument("--explore", action="store_true", help="first ask every provider on the datasets")
    improve.add_argument("--out", default=None, help="write the candidate here instead of in place")
    improve.add_argument("--force", action="store_true", help="write the config even if not accepted")
    improve.add_argument("--schedule", action="store_true", help="every improvement.analysis_interval h")
    improve.add_argument("--cycles", type=int, default=None, help="with --schedule: stop after N cycles")
    improve.add_argument(
        "--task-type", default=None, help="prompts: the task type whose system prompt to improve"
    )
    improve.add_argument(
        "--rollback", action="store_true", help="prompts: move the alias back one write-back"
    )

    experiment = commands.add_parser(
        "experiment", help="an experiment's status (experiments: in config.yaml)"
    )
    experiment.add_argument("action", choices=["status"])
    experiment.add_argument("name")
    experiment.add_argument("--config", default="config.yaml")
    experiment.add_argument("--tracking", default=None, help="mlflow.yaml (default: beside the config)")

    commands.add_parser("plugins", help="list the plugins installed packages provide (and broken ones)")

    ui = commands.add_parser("ui", help="start the MLflow UI on the configured tracking store")
    ui.add_argument("--tracking", default=None, help="mlflow.yaml (default: ./mlflow.yaml)")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--print", action="store_true", help="print the command instead of running it")

    traces = commands.add_parser("traces", help="write a run's deferred traces from its request table")
    traces.add_argument("run_id")
    traces.add_argument("--tracking", default=None, help="mlflow.yaml (default: ./mlflow.yaml)")
    traces.add_argument("--workers", type=int, default=1, help="processes writing traces (default: 1)")
    traces.add_argument("--batch-size", type=int, default=250, help="traces per MLflow call")
    traces.add_argument("--quiet", action="store_true", help="no progress bar")

    args = parser.parse_args(argv)
    if args.profile:  # read by every load of mlflow.yaml in this process and the ones it starts
        os.environ["ORCHESTRA_PROFILE"] = args.profile
    try:
        if args.command == "demo":
            from orchestra.app.demo import main as demo_main

            return demo_main(args.config, limit=args.limit, concurrency=args.concurrency, data=args.data)
        if args.command == "sweep":
            from orchestra.sweeps.runner import main as sweep_main

            return sweep_main(
                args.path,
                dry_run=args.dry_run,
                limit=args.limit,
                backend=args.backend,
                address=args.address,
                workers=args.workers,
                shard_size=args.shard_size,
            )
        if args.command == "check":
            from orchestra.app.check import main as check_main

            return check_main(["--config", args.config])
        if args.command == "improve" and args.action == "prompts":
            from orchestra.improve.prompts_command import main as prompts_main

            return prompts_main(
                args.config, task_type=args.task_type, tracking_path=args.tracking, rollback=args.rollback
            )
        if args.command == "experiment":
            from orchestra.experiments.command import status_main

            return status_main(args.name, config=args.config, tracking_path=args.tracking)
        if args.command == "improve" and args.action == "rollback":
            from orchestra.improve.command import rollback_main

            return rollback_main(args.config, tracking_path=args.tracking)
        if args.command == "improve":
            from orchestra.improve.command import main as improve_main

            return improve_main(
                args.config,
                tracking_path=args.tracking,
                runs=args.runs,
                explore_first=args.explore,
                out=args.out,
                force=args.force,
                schedule=args.schedule,
                cycles=args.cycles,
            )
        if args.command == "plugins":
            from orchestra.app.plugins import format_inventory, inventory

            rows = inventory()
            print(format_inventory(rows))
            return 0
        if args.command == "ui":
            return _ui(args.tracking, args.port, args.print)
        if args.command == "traces":
            from orchestra.tracking.materialise import materialise_traces

            result = materialise_traces(
                args.run_id,
                args.tracking,
                batch_size=args.batch_size,
                workers=args.workers,
                progress=not args.quiet,
            )
            print(result)
            return 0 if result.deferred == 0 else 1
    except OrchestraError as err:
        print(f"orchestra: {err}", file=sys.stderr)
        return 2
    except Exception:  # not ours to explain: the traceback, through the masking stream
        traceback.print_exc()
        return 1
    return 1


def _ui(tracking_path: str | None, port: int, print_only: bool) -> int:
    """Start `mlflow server` on the configured store, on 127.0.0.1, in the foreground."""
    from orchestra.tracking.settings import load_tracking_settings

    settings = load_tracking_settings(tracking_path)
    print(settings.ui_command(port))
    command = settings.ui_argv(port)
    if command is None or print_only:
        return 0  # a tracking server serves its own UI: the line above says where
    environment, argv = command
    print(f"MLflow UI at http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    return subprocess.call(argv, env={**os.environ, **environment})


if __name__ == "__main__":
    raise SystemExit(main())
