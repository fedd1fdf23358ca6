"""Percentiles, the machine, and the markdown table the bench prints and saves."""

from __future__ import annotations

import math
import os
import platform
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was really observed, never interpolated.

    With 400 samples, p99 is the 4th slowest, so one stray outlier does not make it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM (the process's peak resident set) from /proc, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def describe_machine() -> str:
    """nproc, CPU model, Python and the versions that decide the figures."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    return (
        f"nproc {len(os.sched_getaffinity(0))}, {model}; "
        f"Python {platform.python_version()} ({sys.implementation.name}); "
        f"{platform.system()} {platform.release()}; slack-bolt {version('slack-bolt')}, "
        f"waitress {version('waitress')}, requests {version('requests')}"
    )


@dataclass(frozen=True)
class Row:
    """One figure. `app`, `bare_default`, `bare_pbr` are None where it does not apply;
    `unit` is "ms", "/s" or "MB"; `target` is the verdict text, if the figure has one."""

    figure: str
    unit: str
    app: float | None
    bare_default: float | None = None
    bare_pbr: float | None = None
    target: str = ""


def _value(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if unit == "ms":
        return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"
    if unit == "/s":
        return f"{value:.0f} /s"
    return f"{value:.1f} {unit}"


def _ratio(app: float | None, bare: float | None) -> str:
    if app is None or bare is None or math.isnan(app) or math.isnan(bare) or bare == 0:
        return "n/a"
    return f"{app / bare:.2f}"


def render(rows: list[Row], *, machine: str, notes: list[str]) -> str:
    """The whole report: the machine, one table, then what the reader needs to read it."""
    header = (
        "| figure | credit-bot | bare Bolt, defaults | bare Bolt, process_before_response"
        " | ratio app / bare defaults | ratio app / bare pbr | target |"
    )
    lines = [
        "# credit-bot ack benchmark (issue 5)",
        "",
        f"Machine: {machine}",
        "",
        header,
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = [
            row.figure,
            _value(row.app, row.unit),
            _value(row.bare_default, row.unit),
            _value(row.bare_pbr, row.unit),
            _ratio(row.app, row.bare_default),
            _ratio(row.app, row.bare_pbr),
            row.target,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines) + "\n"


def _ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # after "pid (name)": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / _ticks_per_second()


def machine_busy_seconds() -> float:
    """CPU time all processes have used on this machine (every core), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / _ticks_per_second()


def own_cpu_seconds() -> float:
    """CPU time of this process: load generator, FakeSlack, FakeSMSPartner."""
    times = os.times()
    return times.user + times.system
