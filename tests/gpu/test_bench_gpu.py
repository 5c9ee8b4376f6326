"""``agentbench bench`` on a real GPU with vLLM (skipped without them; see tests/gpu/conftest.py):
agentbench serves a synthetic Llama-3.1-8B itself, benches it and stops it; the result carries the
server's startup figures, NVML telemetry (memory, energy) and /metrics readings.

On the H200: ``PYTHONPATH=/tmp/absite:/tmp/site AGENTBENCH_VLLM_ENV="PYTHONPATH=/tmp/site
VLLM_USE_FLASHINFER_SAMPLER=0" python3 -m pytest -m gpu tests/gpu/test_bench_gpu.py`` (about 2 minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentbench.bench.results import list_bench_results
from agentbench.cli.app import main

pytestmark = pytest.mark.gpu


def test_bench_key_serves_a_synthetic_8b_and_records_gpu_telemetry(tmp_path: Path, capsys) -> None:
    code = main(["bench", "llama31-8b", "--synthetic", "--max-model-len", "8192", "--gpu-memory-utilization", "0.85",
                 "--concurrency", "1,8", "--num-prompts", "16", "--input-len", "1024", "--output-len", "128",
                 "--context", "--health-timeout", "300", "--results-dir", str(tmp_path), "--json"])
    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    [stored] = list_bench_results(tmp_path, "llama31-8b")
    assert stored["bench_id"] == printed["bench_id"]
    assert stored["config"]["prompts"] == "vllm-random"  # the synthetic model's tokenizer was used
    startup = stored["server"]["startup"]
    assert startup["kv_cache_tokens"] > 100_000 and startup["ready_s"] > 0
    assert stored["server"]["stop"]["group_exited"] is True and stored["server"]["stop"]["memory_released"] is True
    assert stored["gpu_available"] is True
    for point in stored["points"]:
        m = point["metrics"]
        assert m["failed"] == 0 and m["total_output"] == 16 * 128
        # the decode floor of 16 GB of weights at 4.8 TB/s is 3.35 ms/token: a TPOT below it is a timing bug
        assert m["tpot_ms"]["mean"] > 3.35
        summary = point["telemetry"]["summary"]
        assert summary["peak_memory_gb"] > 16 and summary["energy_j"] > 0
        assert summary["joules_per_output_token"] > 0 and summary.get("peak_running", 0) >= 1  # /metrics read
    assert [r["context_len"] for r in stored["context"]] == [1024, 4096, 8192]
    assert all(r["failed"] == 0 and r["peak_memory_gb"] > 16 for r in stored["context"])
