"""``cs-warehouse``: the command line of the customer-service warehouse (docs/operations.md).

Each subcommand is a thin shell over a function of the package. The work-running ones (``run``,
``snapshot``, ``rollback``) go through the Dagster definitions and record in the persistent
instance. Subcommand modules are imported when the subcommand runs: importing Dagster, dbt's
manifest and the generator costs about 3 s, which ``cs-warehouse --help`` and ``publish-status``
must not pay (measured: ``--help`` 0.2 s this way).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import date
from pathlib import Path

from dagster_project.lib.ingest.guard import KnownCondition, known_condition, use_private_umask
from dagster_project.settings import (
    DBT_PROJECT_DIR, ENGINES, REPO_ROOT, ConfigurationError, Settings, ensure_dirs, eprint,
)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from exc


def _period(value: str) -> str:
    try:
        year, month = value.split("-")
        if len(year) == 4 and 1 <= int(month) <= 12 and len(month) == 2:
            return value
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {value!r}")


def _add_generation_args(p: argparse.ArgumentParser, *, out_default: bool) -> None:
    p.add_argument("--scale", type=float, default=0.1, help="1 = about 100k policies a year (default 0.1)")
    p.add_argument("--start", type=_date, default=date(2024, 1, 1), help="first day (default 2024-01-01)")
    p.add_argument("--days", type=int, default=730, help="number of days (default 730)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    if out_default:
        p.add_argument("--out", type=Path, default=None, help="landing folder (default $CSWH_LANDING_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cs-warehouse",
        description="Customer-service warehouse: generate, ingest, build, gate, publish, report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write sample landing files for all six sources")
    _add_generation_args(p, out_default=True)
    p.add_argument("--defects", action="store_true", help="also write the bad-input catalogue")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("run", help="ingest -> build -> gate -> publish (the main job)")
    p.add_argument("--generate-if-empty", action="store_true",
                   help="generate sample data first if the landing folder is empty")
    _add_generation_args(p, out_default=False)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("declare-empty", help="declare that a landing day of a source really has no records")
    p.add_argument("source", help="source name, e.g. surveys")
    p.add_argument("day", type=_date, help="YYYY-MM-DD (any day of the month for audits)")
    p.add_argument("--reason", required=True, help="why the day is empty (recorded with your user name)")
    p.set_defaults(func=cmd_declare_empty)

    p = sub.add_parser("publish-status", help="show the published version and its manifest")
    p.set_defaults(func=cmd_publish_status)

    p = sub.add_parser("rollback", help="restore the previous (or a named) kept published version")
    p.add_argument("--to", metavar="VERSION", default=None,
                   help="the version id to restore (see `publish-status`; a unique leading part is enough); "
                        "default: the version before the current one")
    p.add_argument("--yes", action="store_true",
                   help="do not ask for confirmation (for scripts); without it the command asks, and no "
                        "answer means no")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("snapshot", help="the monthly KPI snapshot: history rows, report, e-mail")
    p.add_argument("--period", type=_period, required=True, help="the month to snapshot, YYYY-MM")
    p.add_argument("--resend", action="store_true", help="send the e-mail again even if already sent")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("bench", help="the scale benchmark against its DuckDB-only floor")
    p.add_argument("--scale", type=float, default=1.0, help="sample-data scale to benchmark (default 1)")
    p.add_argument("--days", type=int, default=730, help="days of sample data (default 730)")
    p.add_argument("--seed", type=int, default=None, help="random seed of the sample data (default: the benchmark's)")
    p.add_argument("--no-incremental", action="store_true", help="skip the one-day incremental run")
    p.add_argument("--no-snapshot", action="store_true", help="skip the monthly snapshot")
    p.add_argument("--engine", choices=ENGINES, default="duckdb",
                   help="where the pipeline's dbt builds (docs/spark.md); the floor is DuckDB's either way")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("dev", help="open the Dagster UI on the embedded defaults")
    p.add_argument("--port", type=int, default=3000, help="port of the Dagster UI (default 3000)")
    p.add_argument("--send-mail", action="store_true",
                   help="let runs started from the UI or by its schedules send e-mail through CSWH_SMTP_HOST; "
                        "without it their e-mails go to the outbox folder (docs/operations.md#schedules)")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("metrics", help="query the semantic layer (MetricFlow's mf query) on the published file")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: the headline metrics); --list shows them all")
    p.add_argument("--saved-query", default=None,
                   help="a saved query instead of --metrics, e.g. headline_by_month or headline_by_branch_month")
    p.add_argument("--group-by", default=None,
                   help="comma-separated group-by items, e.g. branch,stage,metric_time__quarter (default: none, "
                        "one pooled row)")
    p.add_argument("--period", type=_period, default=None,
                   help="the last month to include, YYYY-MM (default: every month in the file)")
    p.add_argument("--months", type=int, default=1,
                   help="with --period: how many months ending with it (default 1; the report's headline uses 12)")
    p.add_argument("--csv", type=Path, default=None, help="write the result to this CSV file instead of a table")
    p.add_argument("--list", action="store_true", help="list the metrics of the semantic layer and exit")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("docs", help="generate dbt docs offline under data/reports/dbt-docs/")
    p.set_defaults(func=cmd_docs)
    return parser


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.tools.sample_data.generator import generate, print_summary  # deferred: see module docstring

    out = args.out.resolve() if args.out else settings.landing_dir
    summary = generate(out, scale=args.scale, start=args.start, days=args.days, seed=args.seed,
                       defects=args.defects, progress=True)
    print_summary(summary)
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.cli.run import run_pipeline  # deferred: see module docstring

    landing_empty = not settings.landing_dir.exists() or not any(settings.landing_dir.rglob("*.*"))
    if landing_empty:
        if not args.generate_if_empty:
            eprint(f"error: the landing folder {settings.landing_dir} is empty. "
                   "Run `cs-warehouse generate` (or `make data`) first.")
            return 2
        from dagster_project.tools.sample_data.generator import generate, print_summary  # deferred: see module docstring

        eprint(f"[run] {settings.landing_dir} is empty: generating sample data "
               f"(scale {args.scale}, {args.days} days from {args.start})")
        print_summary(generate(settings.landing_dir, scale=args.scale, start=args.start,
                               days=args.days, seed=args.seed, progress=True))
    return run_pipeline(settings)


def cmd_declare_empty(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.lib.ingest.loader import declare_empty  # deferred: see module docstring

    try:
        print(declare_empty(settings, args.source, args.day.isoformat(), args.reason))
    except ValueError as exc:
        eprint(f"error: {exc}")
        return 2
    return 0


def cmd_publish_status(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.lib.publish.versions import print_publish_status  # deferred: see module docstring

    return print_publish_status(settings)


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.cli.commands import rollback_and_record  # deferred: see module docstring

    return rollback_and_record(settings, to=args.to, yes=args.yes)


def cmd_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.cli.commands import run_snapshot_job  # deferred: see module docstring

    return run_snapshot_job(settings, period=args.period, resend=args.resend)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.run import main as bench_main  # deferred: the benchmark is a tool beside the package

    argv = ["--scale", str(args.scale), "--days", str(args.days)]
    argv += ["--seed", str(args.seed)] if args.seed is not None else []
    argv += ["--no-incremental"] * args.no_incremental + ["--no-snapshot"] * args.no_snapshot
    argv += ["--engine", args.engine]
    return bench_main(argv)


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.cli.instance import open_instance  # deferred: see module docstring

    open_instance(settings)  # the instance file, and runs of killed processes marked failed
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "dev", "-m", "dagster_project.definitions", "-p", str(args.port)]
    eprint(f"[dev] Dagster UI on http://127.0.0.1:{args.port}  (DAGSTER_HOME={settings.dagster_home})")
    env = dev_environment(settings, send_mail=args.send_mail)
    if settings.smtp.get("CSWH_SMTP_HOST") and not args.send_mail:
        eprint(f"[dev] e-mail goes to the outbox ({settings.outbox_dir}), not to {settings.smtp['CSWH_SMTP_HOST']}: "
               "add --send-mail to send")
    return subprocess.call(cmd, env={**env, "PYTHONWARNINGS": DEV_WARNING_FILTER}, cwd=REPO_ROOT)


def dev_environment(settings: Settings, *, send_mail: bool = False) -> dict[str, str]:
    """The environment of ``dagster dev``: the settings' own, without the SMTP server unless
    ``send_mail``. The UI starts the schedules' daemon (the monthly snapshot is on by default), and
    a developer trying the UI on a machine whose shell has production mail settings must not mail
    management by surprise: without a host the mailer writes each message to the outbox."""
    env = settings.child_env()
    if not send_mail:
        for key in ("CSWH_SMTP_HOST", "CSWH_SMTP_PORT", "CSWH_SMTP_USER", "CSWH_SMTP_PASSWORD", "CSWH_SMTP_STARTTLS"):
            env.pop(key, None)
    return env


# Dagster 1.13 marks `dagster dev` as superseded by `dg dev` (the separate dagster-dg-cli package,
# not installed here) and warns on every start; the command is supported and works. Only that one
# warning is filtered, by its message, in the dagster dev process tree.
DEV_WARNING_FILTER = "ignore:Function `dev_command` is superseded"


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.lib.report import semantic  # deferred: see module docstring

    if args.list:
        manifest = semantic.load_semantic_manifest()
        for metric in sorted(manifest.get("metrics") or [], key=lambda m: m["name"]):
            print(f"{metric['name']:<48} {metric['type']:<8} {metric.get('label') or ''}")
        return 0
    if not settings.published_db.exists():
        eprint(f"error: nothing published yet ({settings.published_db}); run `cs-warehouse run` first")
        return 2
    metrics = args.metrics.split(",") if args.metrics else None
    if not metrics and not args.saved_query:
        metrics = [h.ratio.metric for h in semantic.headline_definitions()]
    where = semantic.month_where(args.period, max(args.months, 1)) if args.period else None
    command = semantic.mf_command(metrics=metrics, saved_query=args.saved_query,
                                  group_by=args.group_by.split(",") if args.group_by else None, where=where,
                                  csv_path=args.csv)
    semantic.semantic_manifest_path()  # a fresh parse first, if a dbt file changed
    return subprocess.call(command, env=settings.metricflow_env(), cwd=DBT_PROJECT_DIR)


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    from dagster_project.lib.transform.dbt_project import generate_docs  # deferred: see module docstring

    out = generate_docs(settings)
    print(f"dbt docs written to {out} (open index.html in a browser; no network needed)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        ensure_dirs(settings)  # with the user's umask: BI users reach published.duckdb through them
        # Files the pipeline creates from here on (the work file's WAL, spill files, caches, the
        # dbt child's writes) are owner-only from creation; published files get 0644 explicitly.
        use_private_umask()
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        eprint("interrupted")
        return 130
    except (ConfigurationError, KnownCondition) as exc:  # a known condition: its message, no traceback
        eprint(f"error: {exc}")
        return exc.exit_code
    except OSError as exc:
        condition = known_condition(exc, getattr(exc, "filename", None) or "a file of the warehouse")
        if condition is None:
            raise
        eprint(f"error: {condition}")
        return condition.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
