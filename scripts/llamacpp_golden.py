#!/usr/bin/env python3
"""Writes llama.cpp's answers for SmolLM2-135M-Instruct (Q4_1 GGUF) as golden test data.

llama.cpp is an oracle that no one on this project wrote: our tokenizer and forward pass are
tested against what it says for the same GGUF file. Run by hand, not in CI (it needs
llama-cpp-python, whose pip install compiles llama.cpp from source: about 12 minutes with -j1 on a
2-core machine). The output is committed; rerun only when the prompts below change.

Usage:
    python3 -m venv /tmp/llamavenv
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_CUDA=OFF \
        -DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF" CMAKE_BUILD_PARALLEL_LEVEL=1 \
        /tmp/llamavenv/bin/pip install llama-cpp-python==0.3.36
    scripts/fetch-model     # puts the GGUF in ${FP4LM_CACHE:-~/.cache/fp4lm}/models/
    /tmp/llamavenv/bin/python scripts/llamacpp_golden.py [--model PATH] [--out PATH]

Output (tests/testdata/smollm2_llamacpp_golden.json by default):
    "meta":     llama-cpp-python version, model sha256, vocab size, special token ids, settings.
    "tokenize": [{"text", "ids"}] from llm.tokenize(text.encode(), add_bos=False, special=False);
                entries with "ids_special" were also tokenized with special=True (ChatML).
    "logits":   per prompt: its token ids (tokenize(special=True, add_bos=False)), for every
                position the top-20 [token id, logit] pairs of the next-token distribution, and
                the full logits of the last position ("last_logits", rounded to 5 decimals).
    "greedy":   30 argmax tokens after the ChatML prompt (EOS does not stop it), their pieces and
                detokenized text; create_completion(temperature=0, top_k=1) is run too and its
                tokens (which do stop at EOS) must be a prefix of ours, or this script fails.

Numerics to keep in mind when comparing: llama.cpp's CPU backend multiplies Q4_1 weights by
activations that it first quantizes to Q8_1 (per 32-element block), so its logits differ from an
exact float-dequantized forward pass by a small amount (compare with a tolerance, or top-k
agreement, not bit equality). Its tokenizer, by contrast, is exact.
"""

import argparse
import hashlib
import json
import os
import sys

DEFAULT_MODEL = os.path.join(
    os.environ.get("FP4LM_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "fp4lm")),
    "models",
    "smollm2-135m-instruct-q4_1.gguf",
)
DEFAULT_OUT = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "testdata",
    "smollm2_llamacpp_golden.json"))

CHATML_PROMPT = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                 "<|im_start|>assistant\n")
CHATML_WITH_SYSTEM = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained "
                      "by Hugging Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
                      "<|im_start|>assistant\n")

# Strings chosen to exercise the pre-tokenizer and the byte-level BPE: digits (split per
# digit by SmolLM2's regex), contractions, runs of spaces, newlines/tabs, punctuation, multi-byte
# UTF-8 (2, 3 and 4 bytes), code indentation, and ChatML special tokens.
TOKENIZE_STRINGS = [
    "Hello world",
    "hello world",
    " Hello",
    "The quick brown fox jumps over the lazy dog.",
    "12345 678",
    "3.14159 and 1,000,000 in 2024",
    "I'm sure you'll say they're right, but we'd've won't can't",
    "multiple   spaces    here",
    "   leading and trailing spaces   ",
    "line1\nline2\n\nline4",
    "tab\tseparated\tvalues\t",
    "a\r\nb",
    "\n\n\n",
    " ",
    "",
    "Hello, world! How are you? (fine) [ok] {x}; a-b_c... #1 @me",
    "UPPERCASE lowercase MiXeD CamelCase",
    "email@example.com https://example.com/path?q=1&r=2",
    "héllo wörld 你好 🙂",
    "naïve café résumé — “quotes” ‘single’ …",
    "def f(x):\n    return x",
    CHATML_WITH_SYSTEM,
]
SPECIAL_TOKENIZE_STRINGS = {CHATML_WITH_SYSTEM}

LOGIT_PROMPTS = [
    CHATML_PROMPT,
    "The quick brown fox jumps over the lazy dog.",
    "In 1969, Neil Armstrong became the first person to walk on the Moon. He said",
]
TOP_K = 20
GREEDY_TOKENS = 30


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def piece(llm, token):
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


def logits_after(llm, ids):
    """Evaluates ids from an empty context; returns the [len(ids), n_vocab] logits."""
    llm.reset()
    llm.eval(ids)
    return llm.scores[: len(ids)].copy()


def top_k(row, k):
    import numpy as np

    idx = np.argsort(-row, kind="stable")[:k]
    return [[int(i), round(float(row[i]), 5)] for i in idx]


def compact_json(value, indent=0):
    """JSON with dicts indented but scalar lists on one line (keeps the file small, diffable)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {compact_json(v, indent + 1)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        if all(isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v)
               for v in value):
            # List of small scalar lists (top-k pairs, a row of them): one line.
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        items = [pad + " " + compact_json(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()

    try:
        import llama_cpp
    except ImportError as e:
        sys.exit(f"llamacpp_golden: llama-cpp-python is not installed ({e}); see the docstring")
    if not os.path.isfile(args.model):
        sys.exit(f"llamacpp_golden: model not found at {args.model}; run scripts/fetch-model")

    llm = llama_cpp.Llama(model_path=args.model, n_ctx=512, logits_all=True, n_threads=2,
                          verbose=False)
    n_vocab = llm.n_vocab()

    meta = {
        "llama_cpp_python_version": llama_cpp.__version__,
        "model_file": os.path.basename(args.model),
        "model_sha256": sha256_of(args.model),
        "n_vocab": n_vocab,
        "n_ctx": 512,
        "n_threads": 2,
        "token_bos": llm.token_bos(),
        "token_eos": llm.token_eos(),
        "tokenize_call": "llm.tokenize(text.encode('utf-8'), add_bos=False, special=...)",
        "logits_note": "CPU backend, Q4_1 weights x Q8_1-quantized activations; not bit-exact "
                       "with a float-dequantized forward pass",
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", errors="replace"),
    }

    tokenize = []
    for text in TOKENIZE_STRINGS:
        entry = {"text": text,
                 "ids": llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)}
        if text in SPECIAL_TOKENIZE_STRINGS:
            entry["ids_special"] = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        tokenize.append(entry)

    logits = []
    for prompt in LOGIT_PROMPTS:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        scores = logits_after(llm, ids)
        logits.append({
            "prompt": prompt,
            "ids": ids,
            "top20": [top_k(scores[p], TOP_K) for p in range(len(ids))],
            "last_logits": [round(float(x), 5) for x in scores[-1]],
        })

    # Greedy: argmax of the last row, appended and evaluated one token at a time.
    prompt_ids = llm.tokenize(CHATML_PROMPT.encode("utf-8"), add_bos=False, special=True)
    llm.reset()
    llm.eval(prompt_ids)
    greedy_ids = []
    for _ in range(GREEDY_TOKENS):
        token = int(llm.scores[llm.n_tokens - 1].argmax())
        greedy_ids.append(token)
        llm.eval([token])

    # Cross-check with llama-cpp-python's own sampler at temperature 0.
    llm.reset()
    completion = llm.create_completion(prompt_ids, max_tokens=GREEDY_TOKENS, temperature=0.0,
                                       top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
    completion_text = completion["choices"][0]["text"]
    completion_ids = llm.tokenize(completion_text.encode("utf-8"), add_bos=False, special=False)
    greedy_text = llm.detokenize(greedy_ids, special=True).decode("utf-8", errors="replace")
    if not greedy_text.startswith(completion_text):
        sys.exit(f"llamacpp_golden: manual argmax {greedy_text!r} disagrees with "
                 f"create_completion(temperature=0) {completion_text!r}")

    greedy = {
        "prompt": CHATML_PROMPT,
        "prompt_ids": prompt_ids,
        "ids": greedy_ids,
        "pieces": [piece(llm, t) for t in greedy_ids],
        "text": greedy_text,
        "stops_at_eos": False,
        "create_completion_text": completion_text,
        "create_completion_finish_reason": completion["choices"][0]["finish_reason"],
        "create_completion_retokenized_ids": completion_ids,
    }

    out = {"meta": meta, "tokenize": tokenize, "logits": logits, "greedy": greedy}
    text = compact_json(out) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.out} ({len(text.encode('utf-8')) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
