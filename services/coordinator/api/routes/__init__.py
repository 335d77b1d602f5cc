"""One APIRouter per resource; app.py includes them all (`ROUTERS`)."""

from . import dashboard, events, experiments, health, hypotheses, metrics, prometheus, runs

ROUTERS = [health.router, hypotheses.router, runs.router, experiments.router, metrics.router, events.router,
           prometheus.router, dashboard.router]
