"""The outcome of one `nats server check`, rendered as natscli's monitor package renders it.

A check collects messages in three lists (OK, warning, critical) and perf data items; its
status is the worst list that is not empty (CRITICAL > WARNING > OK). Four renderings:

    nagios       `<STATUS> <name> [Crit:..] [Warn:..] [OK:..] | <perf data>` (the default)
    json         the result as an indented document (check_suite, check_name, perf_data, ...)
    prometheus   gauges `<namespace>_<check>_<metric>{item="<name>"}` and `..._status_code`
    text         `<name>: <STATUS>`, then the `Status Detail` and `Check Metrics` tables

The exit code is Nagios's (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), always 0 with prometheus;
with --outfile the rendering goes to the file and the exit code is 1, as natscli's is.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from pynats.cli.ui import humanize
from pynats.cli.ui.output import go_json, out
from pynats.cli.ui.table import Table

OK = "OK"
WARNING = "WARNING"
CRITICAL = "CRITICAL"
UNKNOWN = "UNKNOWN"
NAGIOS_CODES = {OK: 0, WARNING: 1, CRITICAL: 2}
FORMATS = ("nagios", "json", "prometheus", "text")
DEFAULT_NAMESPACE = "nats_server_check"


@dataclass
class PerfDataItem:
    """One measurement; `warn`/`crit` of 0 mean no threshold."""

    name: str
    value: float
    warn: float = 0.0
    crit: float = 0.0
    unit: str = ""
    help: str = ""

    def nagios(self) -> str:
        """`name=value[unit][;warn][;crit]` (seconds with 4 decimals, everything else none)."""
        digits = 4 if self.unit == "s" else 0
        name = f"'{self.name}'" if (" " in self.name or "\t" in self.name) else self.name
        text = f"{name}={self.value:.{digits}f}{self.unit}"
        if self.warn or self.crit:
            text += f";{self.warn:.{digits}f}" if self.warn else ";"
            if self.crit:
                text += f";{self.crit:.{digits}f}"
        return text


@dataclass
class CheckResult:
    """natscli's monitor.Result: messages, perf data, and how to show them."""

    name: str
    check: str
    render_format: str = "nagios"
    namespace: str = DEFAULT_NAMESPACE
    outfile: str = ""
    oks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    criticals: list[str] = field(default_factory=list)
    perf_data: list[PerfDataItem] = field(default_factory=list)

    def ok(self, message: str) -> None:
        self.oks.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def critical(self, message: str) -> None:
        self.criticals.append(message)

    def ok_if_clean(self, message: str) -> None:
        if not self.warnings and not self.criticals:
            self.ok(message)

    def pd(self, *items: PerfDataItem) -> None:
        self.perf_data.extend(items)

    @property
    def status(self) -> str:
        if self.criticals:
            return CRITICAL
        if self.warnings:
            return WARNING
        return OK

    @property
    def exit_code(self) -> int:
        if self.render_format == "prometheus":
            return 0
        return NAGIOS_CODES.get(self.status, 3)

    # -- rendering ------------------------------------------------------------------------------

    def render(self) -> str:
        renderers = {
            "json": self.render_json,
            "prometheus": self.render_prometheus,
            "text": self.render_text,
        }
        return renderers.get(self.render_format, self.render_nagios)()

    def render_nagios(self) -> str:
        parts = [self.name]
        parts += [f"Crit:{c}" for c in self.criticals]
        parts += [f"Warn:{w}" for w in self.warnings]
        parts += [f"OK:{o}" for o in self.oks]
        line = f"{self.status} {' '.join(parts)}"
        if not self.perf_data:
            return line
        return f"{line} | {' '.join(p.nagios() for p in self.perf_data).strip()}"

    def render_json(self) -> str:
        document: dict[str, Any] = {"status": self.status, "check_suite": self.check}
        document["check_name"] = self.name
        if self.warnings:
            document["warning"] = self.warnings
        if self.criticals:
            document["critical"] = self.criticals
        if self.oks:
            document["ok"] = self.oks
        items = []
        for item in self.perf_data:
            entry: dict[str, Any] = {
                "name": item.name,
                "value": _json_number(item.value),
                "warning": _json_number(item.warn),
                "critical": _json_number(item.crit),
            }
            if item.unit:
                entry["unit"] = item.unit
            items.append(entry)
        document["perf_data"] = items
        return go_json(document, indent=2)

    def render_prometheus(self) -> str:
        """Go's expfmt text: metric families sorted by name, one gauge sample each."""
        check = self.check or self.name
        item = self.name.replace('"', ".")
        families: dict[str, tuple[str, str]] = {}
        for pd in self.perf_data:
            help_text = pd.help or f"Data about the NATS CLI check {check}"
            sample = f'{{item="{_label(item)}"}} {go_float(pd.value)}'
            families[_fq_name(self.namespace, check, pd.name)] = (help_text, sample)
        status_sample = f'{{item="{_label(item)}",status="{self.status}"}} {self.exit_code_nagios}'
        families[_fq_name(self.namespace, check, "status_code")] = (
            f"Nagios compatible status code for {check}",
            status_sample,
        )
        lines = []
        for name in sorted(families):
            help_text, sample = families[name]
            lines += [f"# HELP {name} {_help(help_text)}", f"# TYPE {name} gauge", name + sample]
        return "\n".join(lines) + "\n"

    @property
    def exit_code_nagios(self) -> int:
        return NAGIOS_CODES.get(self.status, 3)

    def render_text(self) -> str:
        text = f"{self.name}: {self.status}\n\n"
        detail = Table()
        detail.add_headers("Status", "Message")
        for label, messages in (("OK", self.oks), ("Warning", self.warnings)):
            for message in messages:
                detail.add_row(label, message)
        for message in self.criticals:
            detail.add_row("Critical", message)
        if detail.rows:
            text += "Status Detail\n\n" + detail.render() + "\n"
        metrics = Table()
        metrics.add_headers(
            "Metric", "Value", "Unit", "Critical Threshold", "Warning Threshold", "Description"
        )
        for pd in self.perf_data:
            metrics.add_row(
                pd.name,
                humanize.float_comma(pd.value),
                pd.unit,
                humanize.float_comma(pd.crit),
                humanize.float_comma(pd.warn),
                pd.help,
            )
        if metrics.rows:
            text += "\nCheck Metrics\n\n" + metrics.render() + "\n"
        return text

    # -- finishing ------------------------------------------------------------------------------

    def finish(self) -> int:
        """Print (or save with --outfile) the rendering; the exit code to end with."""
        text = self.render()
        if not self.outfile:
            out(text)
            return self.exit_code
        directory = os.path.dirname(self.outfile) or "."
        handle, temporary = tempfile.mkstemp(dir=directory)
        try:
            with os.fdopen(handle, "w") as stream:
                stream.write(text + "\n")
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.outfile)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        return 1


def _fq_name(namespace: str, check: str, name: str) -> str:
    return "_".join(part for part in (namespace, check, name) if part)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _json_number(value: float) -> int | float:
    """Go's encoding/json writes integral floats without a fraction."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
        return int(value)
    return value


def go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64): shortest digits, exponent from 1e+21 / 1e-05
    and from the number of significant digits onwards (`1e+06`, `1.23456789e+08`, `12345`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    digits, exponent = _shortest(value)
    # Go: %e when exp < -4 or exp >= eprec, eprec = 6 unless the digits reach the point
    eprec = 6
    point = exponent + 1
    if eprec > len(digits) and len(digits) >= point:
        eprec = len(digits)
    sign = "-" if value < 0 else ""
    if exponent < -4 or exponent >= eprec:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest(value: float) -> tuple[str, int]:
    """The shortest round-tripping decimal digits of |value| and its decimal exponent."""
    text = repr(abs(value))
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    if fraction == "0":
        fraction = ""
    digits = (whole + fraction).lstrip("0")
    leading = len(whole + fraction) - len((whole + fraction).lstrip("0"))
    exponent += len(whole) - 1 - leading
    return digits.rstrip("0") or "0", exponent
