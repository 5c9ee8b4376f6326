"""The fidelity comparison (agentbench bench vs vllm bench serve) on result files of both shapes."""

from __future__ import annotations

import json
from pathlib import Path

from agentbench.bench.fidelity import compare_fidelity, main


def _vllm(path: Path, c: int, tok_s: float, ttft: float, tpot: float) -> None:
    path.write_text(json.dumps({"max_concurrency": c, "output_throughput": tok_s, "mean_ttft_ms": ttft,
                                "mean_tpot_ms": tpot, "completed": 16}))


def _folders(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """The vLLM and agentbench result folders (created) and the command line comparing them into tmp/out."""
    vdir, odir = tmp_path / "v", tmp_path / "o"
    vdir.mkdir()
    odir.mkdir()
    return vdir, odir, ["--vllm-dir", str(vdir), "--ours-dir", str(odir), "--out", str(tmp_path / "out")]


def _ours(path: Path, points: list[tuple[int, float, float, float]]) -> None:
    path.write_text(json.dumps({"kind": "load", "model": "m", "points": [
        {"concurrency": c, "metrics": {"output_throughput": t, "ttft_ms": {"mean": f}, "tpot_ms": {"mean": p}}}
        for c, t, f, p in points]}))


def test_within_tolerance_passes_and_outside_fails(tmp_path: Path) -> None:
    vdir, odir, args = _folders(tmp_path)
    out = tmp_path / "out"
    _vllm(vdir / "c1.json", 1, 200.0, 34.5, 4.83)
    _vllm(vdir / "c8.json", 8, 1336.0, 93.9, 5.29)
    _ours(odir / "a.json", [(1, 196.0, 35.0, 4.9), (8, 1336.0 * 0.93, 95.0, 5.3)])
    assert main(args) == 1
    result = json.loads((out / "fidelity.json").read_text())
    failing = [(r["concurrency"], r["metric"]) for r in result["rows"] if not r["passed"]]
    assert failing == [(8, "output tok/s")]
    assert "| 8 | output tok/s |" in (out / "fidelity.md").read_text()


def test_a_concurrency_measured_by_one_side_fails() -> None:
    v = {1: {"output_throughput": 10.0, "mean_ttft_ms": 1.0, "mean_tpot_ms": 1.0}}
    ours = {1: {"output_throughput": 10.0, "ttft_ms": {"mean": 1.0}, "tpot_ms": {"mean": 1.0}},
            64: {"output_throughput": 1.0, "ttft_ms": {"mean": 1.0}, "tpot_ms": {"mean": 1.0}}}
    result = compare_fidelity(v, ours)
    assert result["missing"] == [64] and not result["passed"]
    del ours[64]
    assert compare_fidelity(v, ours)["passed"]


def test_the_command_line_counts_a_failed_runs_empty_file_as_missing(tmp_path: Path, capsys) -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "vllm-0.24.0" / "bench-c8.json"
    real = json.loads(fixture.read_text())
    (tmp_path / "vllm").mkdir()
    (tmp_path / "ours").mkdir()
    (tmp_path / "vllm" / "vllm-c8.json").write_text(fixture.read_text())
    lat = {"mean": 0.0, "median": 0.0, "std": 0.0, "percentiles": {}}
    point = {"concurrency": 8, "metrics": {"output_throughput": real["output_throughput"],
                                           "ttft_ms": {**lat, "mean": real["mean_ttft_ms"]},
                                           "tpot_ms": {**lat, "mean": real["mean_tpot_ms"]}}}
    (tmp_path / "ours" / "c8.json").write_text(json.dumps({"points": [point]}))
    assert main(["--vllm-dir", str(tmp_path / "vllm"), "--ours-dir", str(tmp_path / "ours"),
                 "--out", str(tmp_path / "o")]) == 0
    (tmp_path / "ours" / "c64.json").write_text("")  # agentbench bench at c=64 crashed
    (tmp_path / "vllm" / "vllm-c64.json").write_text(json.dumps({**real, "max_concurrency": 64}))
    assert main(["--vllm-dir", str(tmp_path / "vllm"), "--ours-dir", str(tmp_path / "ours"),
                 "--out", str(tmp_path / "o")]) == 1
    md = (tmp_path / "o" / "fidelity.md").read_text()
    assert "concurrency [64]" in md and "c64.json" in md and "Overall: FAIL" in md


def test_repeats_are_compared_by_their_means_with_every_run_kept(tmp_path: Path) -> None:
    vdir, odir, args = _folders(tmp_path)
    out = tmp_path / "out"
    # Two vLLM runs at c=64 (TTFT 800 and 900 ms) and two of ours in one file (850 and 1000 ms).
    _vllm(vdir / "vllm-c64-1.json", 64, 2900.0, 800.0, 15.0)
    _vllm(vdir / "vllm-c64-2.json", 64, 2950.0, 900.0, 15.2)
    _ours(odir / "r.json", [(64, 2880.0, 850.0, 15.1), (64, 2920.0, 1000.0, 15.0)])
    assert main(args) == 1
    rows = {r["metric"]: r for r in json.loads((out / "fidelity.json").read_text())["rows"]}
    ttft = rows["mean TTFT ms"]
    assert ttft["vllm_runs"] == [800.0, 900.0] and ttft["agentbench_runs"] == [850.0, 1000.0]
    assert abs(ttft["ratio"] - 925.0 / 850.0) < 1e-9 and not ttft["passed"]  # 1.088: the one failure
    assert rows["output tok/s"]["passed"] and abs(rows["output tok/s"]["vllm"] - 2925.0) < 1e-9
    md = (out / "fidelity.md").read_text()
    assert "| 64 | mean TTFT ms | 850.00 (800.00-900.00, n=2) | 925.00 (850.00-1000.00, n=2) | 1.088 | NO |" in md


def test_a_variant_measured_at_some_concurrencies_is_compared_there_only(tmp_path: Path) -> None:
    vdir, odir, args = _folders(tmp_path)
    _vllm(vdir / "c1.json", 1, 200.0, 34.5, 4.83)
    _vllm(vdir / "c64.json", 64, 2900.0, 850.0, 15.0)
    _ours(odir / "nm.json", [(64, 2900.0, 860.0, 15.0)])
    assert main(args) == 1  # c=1 measured by vLLM only: a fail by default
    assert main([*args, "--ignore-vllm-only"]) == 0
    assert {r["concurrency"] for r in json.loads((tmp_path / "out" / "fidelity.json").read_text())["rows"]} == {64}


def test_unequal_repeats_or_a_cut_run_fail_the_check(tmp_path: Path) -> None:
    vdir, odir, args = _folders(tmp_path)
    out = tmp_path / "out"
    for k in (1, 2, 10):  # natural order: runs 1, 2, 10 (not 1, 10, 2)
        _vllm(vdir / f"b{k}-c8-1.json", 8, 1150.0 + k, 176.0, 5.6)
    _ours(odir / "b1.json", [(8, 1150.0, 176.0, 5.6), (8, 1151.0, 177.0, 5.6)])
    assert main(args) == 1  # 3 vLLM runs against 2 of ours: no longer interleaved
    result = json.loads((out / "fidelity.json").read_text())
    assert result["unbalanced"] == [{"concurrency": 8, "vllm_runs": 3, "agentbench_runs": 2}]
    assert all(r["passed"] for r in result["rows"]) and result["rows"][0]["vllm_runs"] == [1151.0, 1152.0, 1160.0]
    assert "Unequal repeats at concurrency 8: vLLM 3 runs, agentbench 2" in (out / "fidelity.md").read_text()
    assert main([*args, "--allow-unbalanced"]) == 0
    (odir / "b3.json").write_text("")  # the last block was cut by its time limit: its file is empty
    assert main([*args, "--allow-unbalanced"]) == 1
    assert "b3.json" in (out / "fidelity.md").read_text()
