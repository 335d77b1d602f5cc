"""The coordinator: sequences hypotheses and experiments and serves their status over HTTP."""
