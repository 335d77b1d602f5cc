"""The Compose stack seen from the host: `.env` settings, preflight checks, `make up`."""
