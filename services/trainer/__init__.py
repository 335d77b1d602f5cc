"""The trainer service: `hypolab train` turns an ExperimentSpec into the installed verifiers
version's own config and trainer (per-stack adapters), reports metrics to the coordinator,
audits the tensors it trains on, and rehearses the whole path on CPU (`--rehearsal`)."""
