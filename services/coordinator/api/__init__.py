"""The coordinator's HTTP API: one router per resource (routes/), typed dependencies
(deps.py), response models (models.py), the views they are built from (views.py), and
the error answers every route shares (errors.py). app.py assembles them."""
