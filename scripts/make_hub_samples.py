"""Writes data/hub_samples/: tiny random stand-ins, in the hub's checkpoint layout, for every hub
model the paper profile reads (profiles/overlays/paper_dryrun.yaml points the hub ids here).

Each is a few hundred kilobytes: a byte-level tokenizer (256 byte tokens and 4 specials, no
merges: it encodes any text) and a randomly initialised model of the hub model's architecture and
context length, seeded, so rerunning this script rewrites the same bytes. The text they generate
is meaningless; the dry run checks the plumbing, not the content.

    python scripts/make_hub_samples.py [--out data/hub_samples]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3; RoBERTa's own order
# Llama 3's chat layout, shortened: header tokens as plain text (the byte tokenizer has no others).
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
# hub id -> (architecture, context length of the real model, chat template or None)
CAUSAL = {
    "kaist-ai/janus-7b": ("mistral", 32768, None),
    "kaist-ai/janus-dpo-7b": ("mistral", 32768, None),
    "kaist-ai/janus-orpo-7b": ("mistral", 32768, None),
    "mistralai/Mistral-7B-Instruct-v0.2": ("mistral", 32768, None),
    "meta-llama/Meta-Llama-3-8B-Instruct": ("llama", 8192, LLAMA3_TEMPLATE),
    "openai-community/gpt2-xl": ("gpt2", 1024, None),
}
CLASSIFIERS = {"s-nlp/roberta_toxicity_classifier": ("neutral", "toxic")}
SEED = 0


def byte_tokenizer(chat_template: str | None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(SPECIALS + alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


def causal_model(architecture: str, context: int, vocab_size: int):
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, MistralConfig

    ids = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "vocab_size": vocab_size}
    if architecture == "gpt2":
        config = GPT2Config(n_positions=context, n_embd=16, n_layer=1, n_head=2, **ids)
    else:
        shape = {
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": context,
            "tie_word_embeddings": True,
        }
        config = (MistralConfig if architecture == "mistral" else LlamaConfig)(**shape, **ids)
    return AutoModelForCausalLM.from_config(config)


def classifier_model(labels: tuple[str, ...], vocab_size: int):
    from transformers import AutoModelForSequenceClassification, RobertaConfig

    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=520,  # 512 tokens after the pad offset, as RoBERTa's 514
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return AutoModelForSequenceClassification.from_config(config)


def write(out: Path, hub_id: str, model, tokenizer) -> None:
    target = out / hub_id
    shutil.rmtree(target, ignore_errors=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/hub_samples"))
    args = parser.parse_args()
    for hub_id, (architecture, context, template) in CAUSAL.items():
        tokenizer = byte_tokenizer(template)
        torch.manual_seed(SEED)
        write(args.out, hub_id, causal_model(architecture, context, len(tokenizer)), tokenizer)
    for hub_id, labels in CLASSIFIERS.items():
        tokenizer = byte_tokenizer(None)
        torch.manual_seed(SEED)
        write(args.out, hub_id, classifier_model(labels, len(tokenizer)), tokenizer)
    print(f"wrote {len(CAUSAL) + len(CLASSIFIERS)} stand-ins under {args.out}")


if __name__ == "__main__":
    main()
