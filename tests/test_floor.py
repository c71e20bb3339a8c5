"""The update floor (`lab/eval/floor.py`, `benchmarks/update_floor.py`): the counts are the equations'
own, hand-derived at J = H = 20, and the floor is assembled from the measured rates as documented."""

import importlib.util
import json
import math
import pathlib

import pytest

from hyperadam_keras import random_meta_params
from hyperadam_keras.lab.eval import floor
from hyperadam_keras.lab.eval.floor import flop_per_coordinate

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_script(name: str):
    """A script of benchmarks/ as a module (its `main(argv)` is called in this process)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_counts_at_the_paper_sizes():
    # 2 × (LSTM 40·80 + decays 40·40 + weight cell 20·20) multiply-adds
    assert flop_per_coordinate(20, 20) == 2 * (40 * 80 + 40 * 40 + 20 * 20) == 10_400
    counts = floor.transcendentals_per_coordinate(20, 20)
    # ELU(pre) 20 exp, 3 gate σ 60, tanh(g) and tanh(c) 40, one exp per (σ(z), σ(−z)) pair of β and γ 40,
    # ELU(ρ) 20 exp, 20 square roots
    assert counts == {"sigmoid": 60, "tanh": 40, "exp": 80, "sqrt": 20} and sum(counts.values()) == 200
    assert floor.state_bytes_per_coordinate(20, 20) == 4 * (2 * 120 + 3) == 972
    assert floor.state_bytes_per_coordinate(4, 3) == 4 * (2 * (6 + 16) + 3)


def test_floor_is_assembled_from_the_measured_rates():
    params = random_meta_params(5, 3, seed=0)
    n = 4096
    result = floor.update_floor(params, n=n, repeats=1)
    rates, parts = result["rates"], result["floor_ms"]
    products = n * flop_per_coordinate(5, 3) / max(rates["product_flops"].values())
    transcendentals = n * sum(c / rates["transcendentals_per_s"][k]
                              for k, c in floor.transcendentals_per_coordinate(5, 3).items())
    memory = n * floor.state_bytes_per_coordinate(5, 3) / rates["memory_bytes_per_s"]
    assert math.isclose(parts["products"], 1e3 * products, rel_tol=1e-12)
    assert math.isclose(parts["transcendentals"], 1e3 * transcendentals, rel_tol=1e-12)
    assert math.isclose(parts["memory"], 1e3 * memory, rel_tol=1e-12)
    assert math.isclose(parts["floor"], max(parts["products"] + parts["transcendentals"], parts["memory"]))
    assert result["measured_update_ms"] > 0
    assert math.isclose(result["fraction_of_floor"], parts["floor"] / result["measured_update_ms"])
    text = floor.format_floor(result)
    assert "n = 4,096 coordinates, J = 5, H = 3" in text and "Fraction of the floor" in text


def test_script_writes_json(tmp_path, capsys):
    from hyperadam_keras.cpu_allocator import cpu_allocator_in_use

    script = load_script("update_floor")
    out = tmp_path / "floor.json"
    allocator = cpu_allocator_in_use()  # the one this process started with
    assert script.main(["--n", "2048", "--repeats", "1", "--json", str(out), "--cpu-allocator", allocator]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 2048 and result["num_candidates"] == 8 and result["fraction_of_floor"] > 0
    assert result["cpu_allocator"] == allocator
    printed = capsys.readouterr().out
    assert "**floor**" in printed and f"TensorFlow's CPU allocator: {allocator}." in printed
    other = "default" if allocator == "bfc" else "bfc"
    with pytest.raises(RuntimeError, match=f"the '{other}' CPU allocator was asked for after"):
        script.main(["--n", "2048", "--repeats", "1", "--cpu-allocator", other])


def test_stage_script_times_every_stage(capsys):
    script = load_script("update_stages")
    assert script.main(["--n", "1024", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "ms" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == [
        "task state (XLA)", "adam cells (XLA)", "whole update (XLA)", "product Kᵀ [x; h] alone (graph)",
        "product [θu, θr]ᵀ [m'; h] alone (graph)"]
    assert all(float(row.split(" | ")[1].rstrip(" |")) > 0 for row in rows)


def test_speed_benchmark_gives_each_update_as_a_fraction_of_the_floor():
    from hyperadam_keras.lab.eval import speed

    results = speed.run_speed_benchmarks(models=["mlp"], steps=1, warmup=1, rounds=1, xla=False, floor_repeats=1)
    result = results["models"]["mlp"]
    floor_ms = result["floor"]["floor_ms"]["floor"]
    assert result["floor"]["n"] == result["parameters"] == 784 * 20 + 20 + 20 * 10 + 10
    update = result["update"]["hyperadam"]
    assert math.isclose(update["fraction_of_floor"], floor_ms / update["median_ms"])
    assert "fraction_of_floor" not in result["update"]["adam"]
    table = speed.format_markdown(results)
    row = next(line for line in table.splitlines() if line.startswith("| mlp | 15,910 | ") and "MiB" not in line
               and line.count("|") == 13)
    assert row.rstrip(" |").endswith(f"{update['fraction_of_floor']:.2f}")
    # The machine line names the CPU model the kernel reports, not the architecture.
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    if model is not None:
        assert results["machine"]["cpu"] == model and f"Machine: CPU ({model}, " in table
    allocator = results["machine"]["cpu_allocator"]
    assert allocator in ("default", "bfc") and f", CPU allocator {allocator}. " in table
    old = dict(results, machine={"device": "CPU", "processor": "x86_64", "cpu_count": 2})
    assert "Machine: CPU (x86_64, 2 CPUs" in speed.format_markdown(old)


def test_layout_probe_agrees_with_the_shipped_update(capsys):
    """The earlier [n, K] update the probe keeps computes the shipped one (its exit status is the agreement check)."""
    script = load_script("layout_probe")
    assert script.main(["--n", "777", "--repeats", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| earlier [n, K] |" in out and "| shipped [K, n] |" in out and "largest relative difference" in out
