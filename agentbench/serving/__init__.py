"""Serving models with vLLM: the server lifecycle, memory estimates and synthetic (dummy-weight) models."""
