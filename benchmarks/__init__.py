"""Speed and quality suites (``pytest benchmarks/``) and experiment scripts
(``python -m benchmarks.NAME``)."""

import kfcli  # noqa: F401  (a short OpenMP spin before torch loads: kfcli.limit_omp_spin)
