"""Reports: a finished run folder -> summary.csv, PNG plots, report.html (offline, no backend)."""
