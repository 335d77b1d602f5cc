"""Audit: what the trainer really trains on, token by token.

Readers of rollouts files, the offline Qwen2.5 tokenizer, role labelling, each stack's own
processing of a rollout into a training sequence, the findings and the pages that show them.
This floor imports nothing from the trainer or the coordinator (docs/architecture.md).
"""
