"""Running in production: the request id and structured logs (``logs.py``), request latency, and the
Prometheus endpoint ``/metrics`` (``views.py``; the metric names live in ``core/metrics.py``)."""
