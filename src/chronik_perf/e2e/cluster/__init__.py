"""Many hosts on Dask: `python -m chronik_perf.e2e --cluster tcp://SCHEDULER:8786|tls://...|local:N`.

The suite's producers and consumers run as tasks pinned to the workers of a Dask cluster instead of processes on
this host; everything else (topics, verification, results) stays on this host, the coordinator.
"""

from .address import ClusterAddress, ClusterError, TlsFiles, parse
from .driver import ClusterDriver
from .session import Session

__all__ = ["ClusterAddress", "ClusterDriver", "ClusterError", "Session", "TlsFiles", "parse"]
