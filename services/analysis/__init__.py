"""Analysis: verdicts from metrics and audit reports, and (later) audits of token sequences."""
