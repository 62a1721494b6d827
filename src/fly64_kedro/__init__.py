"""fly64_kedro: the synthetic fly64 dose/overlap study as a Kedro project."""

import os

# OpenMP threads that spin while waiting make small torch operations ~100× slower when the
# cores are shared (measured: 0.3 vs 0.9–2.9 s per LSQML epoch); must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
