"""Benchmark: `sopflow leads import` of a 10,000-row CSV, against `sopflow lead add` once per lead, in one run.

    .venv/bin/python benchmarks/lead_import.py [--rows 10000] [--adds 30]

Each side runs as the user runs it, a `sopflow` process on a fresh SOPFLOW_HOME (SQLite store):
- `import`: one `sopflow leads import FILE` of a generated --rows file (and one of a tenth of it, to show
  that its peak memory does not grow with the file: the file is read as a stream, 500 rows per transaction);
- `baseline`: --adds `sopflow lead add` processes one after the other, timed per lead and extrapolated to
  --rows.
No Prefect server: PREFECT_API_URL unset and no `sopflow up` in the fresh home, so no flow run starts. `lead add`
finds no server to ask (no connection tried) and reports its runs not started; the import claims runs without
asking Prefect (the dispatcher of `sopflow up` starts them). Prints time, rows/s and peak RSS (os.wait4, per process),
what each left in the store, and the ratios; asserts nothing about times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from sopflow.store.db import transaction
from sopflow.store.models import Lead, SopRun


def fresh_home(name: str) -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-import-{name}-"))
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")}
    return {**env, "SOPFLOW_HOME": str(home), "SOPFLOW_DATABASE_URL": f"sqlite:///{home / 'sopflow.db'}"}


def sopflow(env: dict[str, str], *args: str) -> tuple[float, float, float, str]:
    """Run `sopflow ARGS`: (seconds, CPU seconds, peak RSS in MB, its stdout and stderr)."""
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "sopflow.cli", *args], env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"sopflow {' '.join(args)} exited {process.returncode}: {text}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text.strip()


def stored(env: dict[str, str]) -> tuple[int, int]:
    with transaction(env["SOPFLOW_DATABASE_URL"]) as session:
        return (session.scalar(select(func.count()).select_from(Lead)),
                session.scalar(select(func.count()).select_from(SopRun)))


def write_csv(path: Path, rows: int) -> Path:
    """`rows` leads, each with every column, under addresses named after the file (no two files share one)."""
    industries = ("software", "retail", "manufacturing", "finance", "health")
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("Email,Name,Company,Title,Employees,Industry,Source\n")
        for n in range(rows):
            out.write(f"{path.stem}{n}@bench.example,Lead {n},Company {n % 997},VP Sales,{n % 5000},"
                      f"{industries[n % 5]},import\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--adds", type=int, default=30)
    args = parser.parse_args()
    small_rows = args.rows // 10

    env = fresh_home("import")
    small = write_csv(Path(env["SOPFLOW_HOME"]) / "small.csv", small_rows)
    big = write_csv(Path(env["SOPFLOW_HOME"]) / "leads.csv", args.rows)
    sopflow(env, "leads", "--json")  # not measured: makes the store, as any first command does
    small_seconds, small_cpu, small_rss, _ = sopflow(env, "leads", "import", str(small))
    seconds, cpu, rss, summary = sopflow(env, "leads", "import", str(big))
    leads, runs = stored(env)

    base_env = fresh_home("baseline")
    sopflow(base_env, "leads", "--json")
    per_add = add_cpu = 0.0
    for n in range(args.adds):
        took, used, add_rss, said = sopflow(base_env, "lead", "add", "--email", f"lead{n}@bench.example", "--name",
                                            f"Lead {n}", "--company", "Bench", "--employees", "250")
        per_add, add_cpu = per_add + took / args.adds, add_cpu + used / args.adds
    base_leads, base_runs = stored(base_env)

    print(f"\n{args.rows:,} leads from a CSV vs `sopflow lead add` per lead; SQLite store, {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f}), no Prefect server (PREFECT_API_URL unset)\n")
    print(f"{'':<33} {'time':>10} {'CPU':>9} {'rows/s':>8} {'peak RSS':>9}")
    for label, took, used, rows, peak in (
            (f"leads import, {small_rows:,} rows", small_seconds, small_cpu, small_rows, f"{small_rss:.0f}MB"),
            (f"leads import, {args.rows:,} rows", seconds, cpu, args.rows, f"{rss:.0f}MB"),
            (f"lead add, per lead (mean of {args.adds})", per_add, add_cpu, 1, f"{add_rss:.0f}MB"),
            (f"lead add x {args.rows:,} (extrapolated)", per_add * args.rows, add_cpu * args.rows, args.rows, "-")):
        print(f"{label:<33} {took:>9.2f}s {used:>8.2f}s {rows / took:>8.1f} {peak:>9}")
    print(f"\nimport of {args.rows:,} rows said: {summary}")
    print(f"the two imports left {leads:,} leads and {runs:,} claimed SOP runs ({small_rows:,} + {args.rows:,} rows); "
          f"the {args.adds} `lead add` calls left {base_leads} leads and {base_runs} claimed runs")
    print(f"lead add said: {said.splitlines()[-1]}")
    print("  (a process's time beyond its CPU: waiting for a core under the load above)")
    print(f"\nratio: {args.rows:,} `lead add` calls would take {per_add * args.rows / seconds:.0f}x as long as one "
          f"import; the import's peak RSS is {rss / small_rss:.2f}x for 10x the rows")


if __name__ == "__main__":
    main()
