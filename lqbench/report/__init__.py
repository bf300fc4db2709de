"""The self-contained HTML report (`lqbench report`): charts and tables over the named queries."""

from lqbench.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
