"""GPU (NVML) and server (/metrics) telemetry, sampled in the background while a model works."""
