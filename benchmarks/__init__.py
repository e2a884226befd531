"""jaxtwin benchmarks: ``python -m benchmarks <name>`` (or ``all``); each prints a
table and a final ``RESULT {json}`` line with name, jaxtwin_s, reference_s,
ratio, device and config. References live in ``benchmarks/reference/``."""
