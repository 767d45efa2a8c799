"""Tooling around the judge, not part of a production install: the traffic simulator, OpenMetrics
history for promtool backfills, the batch judge used for calibration, and the
judge benchmark. The product (`analysis` outside this package, `controller`) never imports it;
an import contract says so."""
