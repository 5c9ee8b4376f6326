"""Serving benchmarks (``agentbench bench``) with the metric definitions of ``vllm bench serve``."""
