"""Storage engines behind the ports: ``sqlite`` (single node), ``local`` (in-process pub/sub), later ``mongodb``
and ``redis`` for the scaled-out deployment."""
