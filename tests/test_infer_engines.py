"""Inference: the transformers engine, prompt formats per checkpoint, seeding, outputs, endpoints."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from janus.chat_format import save_format
from janus.config.infer import InferSection
from janus.infer.endpoint_responses import run_endpoint
from janus.infer.engines import TransformersEngine, resolve_backend
from janus.infer.responses import response_metrics, run_checkpoint, run_infer
from janus.infer.units import fit_prompt
from janus.io import read_json, read_jsonl
from tests.sections import tiny_section
from tests.servers.fake_openai import FakeOpenAIServer

BENCH = [
    {
        "id": f"q{i}",
        "source": "mf-test",
        "system": f"You are a terse assistant who answers in style {i}.",
        "prompt": f"Question number {i}?",
        "reference_answer": "-",
        "rubrics": [],
        "preference_set": {},
    }
    for i in range(3)
]


class RecordingEngine(TransformersEngine):
    """The real engine, keeping the prompts it was given (to check their format)."""

    def generate(self, prompts, *args, **kwargs):
        self.seen = [self.tokenizer.decode(ids) for ids in prompts]
        return super().generate(prompts, *args, **kwargs)


@pytest.fixture(scope="module")
def mistral_checkpoint(tiny_model_dir, tmp_path_factory):
    """The tiny model as if trained in the paper's Mistral format (janus_format.json)."""
    out = tmp_path_factory.mktemp("ckpt") / "sft"
    shutil.copytree(tiny_model_dir, out)
    save_format(out, "mistral")
    return out


def _params(path, **overrides) -> InferSection:
    settings = {
        "models": {"m": {"path": str(path)}},
        "best_of_n": {},
        "sampling": {"max_tokens": 5},
        "engine": {"backend": "transformers", "batch_size": 4},
    }
    settings.update(overrides)
    return tiny_section("infer", **settings)


def test_both_conditions_are_prompted_in_the_checkpoints_own_format(mistral_checkpoint):
    params = _params(mistral_checkpoint)
    engine = RecordingEngine(mistral_checkpoint, params.engine)
    rows, metrics = run_checkpoint(params, "m", BENCH, engine=engine)
    with_system = [p for p in engine.seen if "terse" in p]
    without = [p for p in engine.seen if "terse" not in p]
    assert len(with_system) == len(without) == 3
    assert (
        "[INST]You are a terse assistant who answers in style 0.\nQuestion number 0? [/INST]"
        in (with_system[0])
    )
    assert without[0].endswith("[INST]Question number 0? [/INST]")
    assert all("<|im_start|>" not in p for p in engine.seen)
    assert [(r["id"], r["condition"]) for r in rows] == [
        (f"q{i}", c) for c in ("system", "no_system") for i in range(3)
    ]
    assert all(r["system"] is None for r in rows if r["condition"] == "no_system")
    assert all(r["system"] == BENCH[int(r["id"][1])]["system"] for r in rows[:3])
    assert all(isinstance(r["response"], str) and r["num_samples"] == 1 for r in rows)
    assert metrics["prompt_format"] == "mistral"
    assert metrics["responses"] == 6
    assert metrics["per_condition"]["no_system"]["responses"] == 3
    assert metrics["generated_tokens"] == sum(r["response_tokens"] for r in rows)
    assert metrics["runtime"]["tokens_per_second"] > 0  # a timing: runtime/, not DVC metrics


def test_a_checkpoint_without_a_format_file_uses_its_chat_template(tiny_model_dir):
    params = _params(tiny_model_dir)
    engine = RecordingEngine(tiny_model_dir, params.engine)
    run_checkpoint(params, "m", BENCH[:1], engine=engine)
    assert engine.seen[0].startswith("<|im_start|>system\nYou are a terse assistant")
    assert engine.seen[0].endswith("<|im_start|>assistant\n")


def test_sampling_is_seeded(tiny_model_dir):
    engine = TransformersEngine(tiny_model_dir, tiny_section("infer.engine", batch_size=4))
    prompts = [engine.tokenizer(f"Prompt {i}")["input_ids"] for i in range(3)]
    sampling = tiny_section("infer.sampling", max_tokens=8)

    def texts(seed):
        return [c.text for samples in engine.generate(prompts, sampling, 2, seed) for c in samples]

    first = texts(42)
    assert first == texts(42)
    assert first != texts(7)
    assert len(set(first)) > 1  # samples of one prompt differ from each other


def test_run_infer_writes_responses_and_metrics(mistral_checkpoint, tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(row) + "\n" for row in BENCH))
    params = _params(mistral_checkpoint, max_items=2)
    run_infer(
        params,
        "m",
        bench,
        tmp_path / "responses" / "m.jsonl",
        tmp_path / "metrics" / "infer" / "m.json",
    )
    rows = read_jsonl(tmp_path / "responses" / "m.jsonl")
    assert len(rows) == 4
    assert set(rows[0]) >= {
        "id",
        "model",
        "source",
        "condition",
        "system",
        "prompt",
        "response",
        "num_samples",
        "reward",
    }
    metrics = read_json(tmp_path / "metrics" / "infer" / "m.json")
    assert metrics["responses"] == 4 and metrics["engine"] == "transformers"


def test_bench_rows_without_required_columns_are_an_error(tmp_path, mistral_checkpoint):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"id": "x", "prompt": "hi"}) + "\n")
    with pytest.raises(ValueError, match=r"row 1 lacks column\(s\) \['source', 'system'\]"):
        run_infer(_params(mistral_checkpoint), "m", bench, tmp_path / "r", tmp_path / "m")


def test_empty_responses_are_kept_and_counted():
    rows = [
        {"condition": "system", "response": "", "response_tokens": 0, "finish_reason": "stop"},
        {"condition": "system", "response": "hi", "response_tokens": 2, "finish_reason": "length"},
        {"condition": "no_system", "response": "  ", "response_tokens": 1, "finish_reason": "stop"},
    ]
    metrics = response_metrics(rows, ["system", "no_system"])
    assert metrics["empty_responses"] == 2
    assert metrics["cut_at_max_tokens"] == 1
    assert metrics["mean_response_tokens"] == pytest.approx(1.0)
    assert metrics["per_condition"]["system"]["empty_responses"] == 1


def test_the_backend_is_decided_before_loading_and_never_downgraded_on_cuda(
    monkeypatch, caplog
):
    engine = tiny_section("infer.engine")
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "0")
    caplog.set_level(logging.INFO, logger="janus")
    assert resolve_backend(engine.model_copy(update={"backend": "auto"})) == "transformers"
    assert "no CUDA device" in caplog.text
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        resolve_backend(engine.model_copy(update={"backend": "vllm"}))
    # on a CUDA machine without vLLM, auto and vllm stop with the command; transformers is a choice
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "2")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    for backend in ("auto", "vllm"):
        with pytest.raises(RuntimeError, match="make setup-gpu"):
            resolve_backend(engine.model_copy(update={"backend": backend}))
    assert resolve_backend(engine.model_copy(update={"backend": "transformers"})) == "transformers"


def test_prompts_longer_than_the_context_keep_their_end():
    assert fit_prompt([1, 2, 3, 4, 5], context_length=6, max_tokens=3) == [3, 4, 5]
    assert fit_prompt([1, 2], context_length=6, max_tokens=3) == [1, 2]
    with pytest.raises(ValueError, match="no room"):
        fit_prompt([1], context_length=4, max_tokens=4)


def test_batches_are_padded_by_the_tokenizer_on_the_side_asked(tiny_model_dir):
    from janus.hf_loading import load_tokenizer, pad_ids

    tokenizer = load_tokenizer(tiny_model_dir)
    pad = tokenizer.pad_token_id
    ids, mask = pad_ids(tokenizer, [[5, 6, 7], [8]], "left")
    assert ids.tolist() == [[5, 6, 7], [pad, pad, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad_ids(tokenizer, [[5, 6, 7], [8]], "right")
    assert ids.tolist() == [[5, 6, 7], [8, pad, pad]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_model_names_are_unique_across_groups():
    with pytest.raises(ValueError, match="'x' is in both models and best_of_n"):
        tiny_section("infer", models={"x": {"path": "a"}}, best_of_n={"x": {"path": "a"}})
    with pytest.raises(ValueError, match="must match"):
        tiny_section("infer", models={"a/b": {"path": "a"}}, best_of_n={})


def test_an_endpoint_baseline_gets_system_messages_as_chat_turns(monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_KEY", "k")
    server = FakeOpenAIServer().start()
    try:
        endpoint = tiny_section(
            "llm.teacher",
            backend="openai",
            model="gpt-fake",
            base_url=server.base_url,
            api_key_env="FAKE_OPENAI_KEY",
            max_retries=0,
            timeout_s=5,
        )
        params = _params("unused", endpoints={"gpt": endpoint}, sampling={"max_tokens": 7})
        rows, metrics = run_endpoint(params, "gpt", BENCH[:2])
        assert [r["response"] for r in rows[:2]] == [
            "echo: Question number 0?",
            "echo: Question number 1?",
        ]
        roles = [[m["role"] for m in body["messages"]] for body in server.bodies]
        assert sorted(roles) == [["system", "user"]] * 2 + [["user"]] * 2
        assert {body["max_tokens"] for body in server.bodies} == {7}
        assert metrics["responses"] == 4 and metrics["failed_requests"] == 0
        # a request that keeps failing: over max_failed_fraction the stage stops ...
        failing = [dict(BENCH[0], id="bad", prompt="[[500x99]] broken")]
        with pytest.raises(RuntimeError, match="2 of 2 requests failed"):
            run_endpoint(params, "gpt", failing)
        # ... within it, the rows are dropped and counted
        lenient = params.model_copy(update={"max_failed_fraction": 0.5})
        rows, metrics = run_endpoint(lenient, "gpt", failing + BENCH[:1])
        assert metrics["failed_requests"] == 2
        assert [r["id"] for r in rows] == ["q0", "q0"]
    finally:
        server.stop()


@pytest.mark.gpu
def test_vllm_engine_generates_seeded_samples_for_every_prompt(tiny_model_dir):
    from janus.infer.engines import VLLMEngine, encode_prompts  # fails, not skips, without vLLM

    engine = VLLMEngine(
        tiny_model_dir, tiny_section("infer.engine", backend="vllm", gpu_memory_utilization=0.3)
    )
    prompts = encode_prompts(engine.tokenizer, ["Hello there", "Another prompt"])
    sampling = tiny_section("infer.sampling", max_tokens=6)
    first = engine.generate(prompts, sampling, num_samples=3, seed=1)
    again = engine.generate(prompts, sampling, num_samples=3, seed=1)
    assert [len(samples) for samples in first] == [3, 3]
    assert [[c.text for c in s] for s in first] == [[c.text for c in s] for s in again]
    assert all(0 < c.num_tokens <= 6 for samples in first for c in samples)
    engine.close()
