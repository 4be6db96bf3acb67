"""Input stages and hub loading by revision, on small local files (no hub at run time).

A hub repository is stood in for by the hub cache's own layout (`hub/<type>s--owner--name/
snapshots/<sha>/...`) with HF_HUB_OFFLINE=1: the real loading code (snapshot_download at a
revision, then `datasets` / `from_pretrained` on that snapshot) runs unchanged.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from janus.config.common import ConfigError
from janus.config.sources import InputSource
from janus.config.toxicity import PerplexityModelParams, ToxicityPromptsSource
from janus.data.inputs import (
    make_dsp,
    make_helpfulness_prompts,
    make_perplexity_model,
    make_toxicity_prompts,
)
from janus.data.sources.base import SourceError, read_rows
from janus.io import read_jsonl
from tests.hub_cache import OTHER_SHA, SHA, hub_repo

REPO_ROOT = Path(__file__).resolve().parents[1]


def _fake_hub(monkeypatch, tmp_path: Path, repo_type: str, repo_id: str, files: dict[str, Path | str]) -> None:
    snapshot = hub_repo(monkeypatch, tmp_path, repo_id, repo_type)
    for name, content in files.items():
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_text(content)


def _rtp_row(i: int, toxicity: float | None) -> dict:
    return {"filename": f"f{i}.txt", "begin": 0, "end": 9, "challenging": False,
            "prompt": {"text": f"prompt {i}", "toxicity": toxicity}}  # fmt: skip


def test_a_hub_dataset_is_read_at_its_revision(monkeypatch, tmp_path, caplog):
    rows = "".join(json.dumps(_rtp_row(i, 0.1 * i)) + "\n" for i in range(3))
    _fake_hub(monkeypatch, tmp_path, "dataset", "acme/rtp", {"data/train.jsonl": rows})
    read = [raw.data for raw in read_rows("hub:acme/rtp", "train", revision=SHA)]
    assert [row["prompt"]["text"] for row in read] == ["prompt 0", "prompt 1", "prompt 2"]
    # another commit is not silently replaced by what the cache holds
    with pytest.raises(SourceError, match=OTHER_SHA):
        list(read_rows("hub:acme/rtp", "train", revision=OTHER_SHA))
    with pytest.raises(SourceError, match="needs a revision"):
        list(read_rows("hub:acme/rtp", "train"))
    # a branch name reads, with a warning that it is not pinned
    with caplog.at_level(logging.WARNING):
        assert len(list(read_rows("hub:acme/rtp", "train", revision="main"))) == 3
    assert "not a commit sha" in caplog.text


def test_toxicity_prompts_sample_the_non_toxic_prompts_from_the_hub(monkeypatch, tmp_path):
    toxicities = [0.1, 0.7, 0.2, None, 0.3, 0.05, 0.9, 0.4]
    rows = "".join(json.dumps(_rtp_row(i, t)) + "\n" for i, t in enumerate(toxicities))
    rows += json.dumps({"filename": "x", "prompt": {"text": ""}}) + "\n"
    _fake_hub(monkeypatch, tmp_path, "dataset", "acme/rtp", {"data/train.jsonl": rows})
    source = ToxicityPromptsSource(path="hub:acme/rtp", revision=SHA, split="train", sample=3,
                                   max_prompt_toxicity=0.5, seed=7)  # fmt: skip
    out = tmp_path / "prompts.jsonl"
    metrics = make_toxicity_prompts(source, out)
    kept = read_jsonl(out)
    texts = [row["prompt"]["text"] for row in kept]
    eligible = {"prompt 0", "prompt 2", "prompt 4", "prompt 5", "prompt 7"}
    assert len(texts) == 3 and set(texts) <= eligible
    assert texts == sorted(texts, key=lambda t: int(t.split()[1]))  # in the source's order
    assert metrics["eligible"] == 5 and metrics["above_max_prompt_toxicity"] == 2
    assert metrics["skipped"] == {"no_prompt_text": 1, "no_prompt_toxicity": 1}
    assert metrics["revision"] == SHA
    assert make_toxicity_prompts(source, tmp_path / "again.jsonl") and read_jsonl(tmp_path / "again.jsonl") == kept
    with pytest.raises(ValueError, match="fewer than"):
        make_toxicity_prompts(source.model_copy(update={"sample": 6}), tmp_path / "x.jsonl")


def test_the_bundled_samples_are_copied_row_for_row(tmp_path):
    source = ToxicityPromptsSource(path=str(REPO_ROOT / "data/sources/realtoxicityprompts.jsonl"),
                                   revision=None, split="train", sample=None,
                                   max_prompt_toxicity=None, seed=0)  # fmt: skip
    make_toxicity_prompts(source, tmp_path / "rtp.jsonl")
    assert read_jsonl(tmp_path / "rtp.jsonl") == read_jsonl(source.path)
    dsp = InputSource(path=str(REPO_ROOT / "data/sources/train/domain_specific_preference.jsonl"),
                      revision=None, split="train")  # fmt: skip
    metrics = make_dsp(dsp, tmp_path / "dsp.jsonl")
    assert metrics["rows"] + sum(metrics["skipped"].values()) == len(read_jsonl(dsp.path))


def test_helpfulness_prompts_keep_what_the_benchmark_parser_accepts(tmp_path):
    from janus.evaluate.helpfulness_bench import read_questions

    for benchmark, name in (("alpaca_eval", "alpaca_eval.json"), ("mt_bench", "mt_bench.jsonl"),
                            ("arena_hard", "arena_hard.jsonl")):  # fmt: skip
        path = str(REPO_ROOT / "data/sources/helpfulness_bench" / name)
        out = tmp_path / f"{benchmark}.jsonl"
        metrics = make_helpfulness_prompts(benchmark, InputSource(path=path, revision=None, split="train"), out)
        before, _ = read_questions(benchmark, path)
        after, skipped = read_questions(benchmark, str(out))
        assert [(q.id, q.turns) for q in after] == [(q.id, q.turns) for q in before]
        assert metrics["questions"] == len(after) and skipped == {}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question_id": 1, "category": "x"}) + "\n")
    with pytest.raises(ValueError, match="no valid mt_bench questions"):
        make_helpfulness_prompts("mt_bench", InputSource(path=str(bad), revision=None, split="train"),
                                 tmp_path / "o.jsonl")  # fmt: skip


def test_the_perplexity_model_from_the_hub_at_its_revision_or_the_base(monkeypatch, tmp_path, tiny_model_dir):
    from janus.hf_loading import load_model

    files = {p.name: p for p in Path(tiny_model_dir).iterdir() if p.is_file()}
    _fake_hub(monkeypatch, tmp_path, "model", "acme/gpt2-tiny", files)
    out = tmp_path / "models" / "perplexity"
    metrics = make_perplexity_model(PerplexityModelParams(hub_id="acme/gpt2-tiny", revision=SHA),
                                    tiny_model_dir, out)  # fmt: skip
    assert metrics["revision"] == SHA and (out / "config.json").exists()
    assert load_model(out).config.num_hidden_layers == 2
    # from_pretrained on the hub id at that revision reads the same files
    assert load_model("acme/gpt2-tiny", revision=SHA).config.num_hidden_layers == 2
    with pytest.raises(Exception, match="(?i)cannot find|offline|not.*found"):
        make_perplexity_model(PerplexityModelParams(hub_id="acme/gpt2-tiny", revision=OTHER_SHA),
                              tiny_model_dir, tmp_path / "other")  # fmt: skip
    base = make_perplexity_model(PerplexityModelParams(hub_id=None, revision=None), tiny_model_dir,
                                 tmp_path / "base")  # fmt: skip
    assert base["copied_from"] == str(tiny_model_dir)
    assert (tmp_path / "base" / "config.json").read_bytes() == (Path(tiny_model_dir) / "config.json").read_bytes()


def test_params_refuse_an_unpinned_hub_source_and_generate_off_with_the_generated_collection():
    import yaml

    from janus.config.params import parse_params

    raw = yaml.safe_load((REPO_ROOT / "profiles/paper.yaml").read_text())
    raw["filter"]["sources"]["nectar"]["revision"] = None
    with pytest.raises(ConfigError, match="needs a revision"):
        parse_params(raw)
    raw = yaml.safe_load((REPO_ROOT / "profiles/paper.yaml").read_text())
    raw["build_pairs"]["collection"] = "data/multifaceted_collection.jsonl"
    with pytest.raises(ConfigError, match="generate.enabled is false"):
        parse_params(raw)
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["toxicity"]["prompts_source"]["revision"] = SHA  # a local file has no revision
    with pytest.raises(ConfigError, match="local file"):
        parse_params(raw)
