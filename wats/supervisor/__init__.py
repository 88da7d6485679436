"""The supervisor process: spawns workers fresh, restarts them, and runs the bus between them.

Parts, one job each: ``spec`` (which workers), ``policy`` (backoff and flapping, pure logic),
``process`` (one worker's process tree), ``broker`` (event proxy and control router), ``state``
(state file, leftovers), ``logs`` (structlog outputs, worker output capture), ``standby`` (warm
spares), ``arbiter`` (the event loop) and ``run`` (bring an instance up and down).
"""

from wats.supervisor.run import run_supervisor

__all__ = ["run_supervisor"]
