# The native core's parts (*.pxi, included by chronik_perf/_core.pyx) and its C declarations (includes/*.pxd).
