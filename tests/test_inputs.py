"""Bad inputs get a clear error that names the problem and the way out."""

import json

import pytest

from rlvr.config import ArithConfig, ModelConfig
from rlvr.data.benchmarks import BenchmarkError, load_benchmark
from rlvr.models import ModelNotFoundError, resolve_model_path


def test_model_path_that_does_not_exist(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path(ModelConfig(path=str(tmp_path / "missing")), ArithConfig())


def test_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"without config\.json"):
        resolve_model_path(ModelConfig(path=str(tmp_path)), ArithConfig())


def test_hub_id_while_offline_suggests_a_local_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match=r"offline.*model.path=/path/to/Qwen3-4B"):
        resolve_model_path(ModelConfig(path="Qwen/Qwen3-4B"), ArithConfig())


def test_benchmark_while_offline_suggests_a_data_dir(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(BenchmarkError, match=r"offline.*data.dir=/path/to/data"):
        load_benchmark("math500", "test")


def test_eval_set_without_answers(tmp_path):
    (tmp_path / "math500").mkdir()
    rows = [{"problem": "1+1?", "answer": "2"}, {"problem": "2+2?", "answer": ""},
            {"problem": "3+3?", "answer": " "}]
    (tmp_path / "math500" / "test.jsonl").write_text("\n".join(map(json.dumps, rows)))
    with pytest.raises(BenchmarkError, match=r"'math500'.*2 of 3 rows have no answer"):
        load_benchmark("math500", "test", data_dir=str(tmp_path))


def test_missing_local_file_names_the_path(tmp_path):
    with pytest.raises(BenchmarkError, match=str(tmp_path / "aime24" / "test.jsonl")):
        load_benchmark("aime24", "test", data_dir=str(tmp_path))


def test_unknown_benchmark_lists_the_known_ones():
    with pytest.raises(BenchmarkError, match=r"known: .*gsm8k"):
        load_benchmark("gsm9k", "test")
