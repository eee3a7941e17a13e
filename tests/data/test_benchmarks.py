"""Each benchmark loads from local jsonl files with its documented row count and normalised fields;
a missing file and an offline hub fail with errors that say what to do."""

import pytest

from rlvr.data.benchmarks import BENCHMARKS, BenchmarkError, load_benchmark

# Published sizes of the splits (MATH train: 7,500 problems, 2 of them with an empty answer).
DOCUMENTED = [
    ("gsm8k", "train", 7473), ("gsm8k", "test", 1319), ("math", "train", 7498),
    ("math", "test", 5000), ("math500", "test", 500), ("aime24", "test", 30),
    ("aime25", "test", 30), ("amc23", "test", 40), ("olympiadbench", "test", 675),
]


@pytest.mark.parametrize(("name", "split", "count"), DOCUMENTED)
def test_local_benchmark_has_documented_row_count(name, split, count, data_dir):
    problems = load_benchmark(name, split, str(data_dir))
    assert len(problems) == count == BENCHMARKS[name].counts[split]
    assert len({p.id for p in problems}) == count
    assert all(p.problem.strip() and p.answer.strip() for p in problems)


def test_normalised_answers_match_the_sources(data_dir):
    gsm8k = load_benchmark("gsm8k", "test", str(data_dir))
    assert gsm8k[0].answer == gsm8k[0].source["answer"].split("####")[-1].strip()
    assert all("," not in p.answer for p in gsm8k)
    amc = load_benchmark("amc23", "test", str(data_dir))
    assert all(not p.answer.endswith(".0") for p in amc)
    olympiad = load_benchmark("olympiadbench", "test", str(data_dir))
    assert all(not p.answer.startswith("$") for p in olympiad)


def test_missing_local_file_names_the_expected_path(tmp_path):
    with pytest.raises(BenchmarkError, match=r"math500/test\.jsonl"):
        load_benchmark("math500", "test", str(tmp_path))


def test_offline_hub_without_local_dir_points_to_the_local_option(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(BenchmarkError, match=r"offline.*data\.dir="):
        load_benchmark("gsm8k", "test")


def test_unknown_benchmark_and_split_are_named():
    with pytest.raises(BenchmarkError, match="unknown benchmark 'mathh'"):
        load_benchmark("mathh", "test")
    with pytest.raises(BenchmarkError, match="no split 'train'"):
        load_benchmark("aime24", "train")


def test_rows_without_answers_are_reported(tmp_path):
    (tmp_path / "aime24").mkdir()
    (tmp_path / "aime24" / "test.jsonl").write_text(
        '{"id": 1, "problem": "p", "answer": "3"}\n{"id": 2, "problem": "q", "answer": ""}\n')
    with pytest.raises(BenchmarkError, match="1 of 2 rows have no answer"):
        load_benchmark("aime24", "test", str(tmp_path))
