#!/usr/bin/env python3
"""Cross-check `fp4lm eval --tasks` against lm-evaluation-harness itself, item by item.

Runs the first --limit items of every task that has a file through both harnesses on the same
GGUF model and compares, per item and choice, the summed log-likelihood, the greedy flag, the
number of continuation tokens, and the acc / acc_norm choices. lm-eval reads the same records:
each file is converted to the record schema of lm-eval's own task (Hugging Face fields), and a
small task YAML `include`s lm-eval's official YAML (lm_eval/tasks/...), overriding only the
dataset location, so templates, preprocessing and scoring are lm-eval's code. The model is
lm-eval's `hf` backend: transformers loads the GGUF (`gguf_file=`), dequantizes it to FP32 and
runs PyTorch on the CPU.

Not run in CI (it needs PyTorch and takes minutes). By hand, from the repository root:

    python3 -m venv /tmp/lmeval_venv
    /tmp/lmeval_venv/bin/pip install lm-eval transformers accelerate gguf sentencepiece torch
    cmake --build build --target fp4lm
    /tmp/lmeval_venv/bin/python scripts/lm_eval_compare.py \\
        --model ~/.cache/fp4lm/models/smollm2-135m-instruct-q4_1.gguf \\
        --fp4lm build/bin/fp4lm --data-dir ../shared/data --limit 50 --out /tmp/lm_eval_compare

PyPI's Linux torch wheel links CUDA libraries; on a machine without a GPU driver, `import torch`
may need LD_LIBRARY_PATH to point at a directory holding libcuda.so.1 (the CUDA toolkit's
stubs/libcuda.so, symlinked) to load; it then runs on the CPU.

Tasks missing from --data-dir (ARC-Challenge, LAMBADA, OpenBookQA are not in ../shared) are
taken from the hand-made files of tests/testdata/harness instead (--testdata; "" to skip), so
their code paths are cross-checked too. Writes compare.json and prints a markdown summary;
exits 1 if any chosen answer differs or a log-likelihood differs by more than --tolerance.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Files looked up per task, as fp4lm's loaders do (apps/fp4lm/harness_tasks.cc).
CANDIDATES = {
    "piqa": ["piqa/valid.jsonl"],
    "hellaswag": ["hellaswag/hellaswag_val_full.jsonl"],
    "arc_easy": ["arc_easy/arc_easy.jsonl"],
    "arc_challenge": ["arc_challenge/arc_challenge.jsonl"],
    "boolq": ["boolq/boolq.jsonl"],
    "winogrande": ["winogrande/winogrande.jsonl"],
    "lambada_openai": ["lambada_openai/lambada_openai.jsonl", "lambada/lambada_openai.jsonl"],
    "openbookqa": ["openbookqa/openbookqa.jsonl"],
}

# lm-eval's YAML for each task, relative to lm_eval/tasks, and the split it evaluates.
OFFICIAL = {
    "piqa": ("piqa/piqa.yaml", "validation"),
    "hellaswag": ("hellaswag/hellaswag.yaml", "validation"),
    "arc_easy": ("arc/arc_easy.yaml", "test"),
    "arc_challenge": ("arc/arc_challenge.yaml", "test"),
    "boolq": ("super_glue/boolq/default.yaml", "validation"),
    "winogrande": ("winogrande/default.yaml", "validation"),
    "lambada_openai": ("lambada/lambada_openai.yaml", "test"),
    "openbookqa": ("openbookqa/openbookqa.yaml", "test"),
}

LETTERS = "ABCDEFGHIJ"


def read_jsonl(path, limit):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) == limit:
                break
    return rows


def dedupe(choices, gold):
    """ARC files pad 3-choice questions with a repeated choice; lm-eval sees the original 3."""
    gold_text = choices[gold]
    unique = []
    for c in choices:
        if c not in unique:
            unique.append(c)
    return unique, unique.index(gold_text)


def to_lm_eval_docs(task, path, limit):
    """Records of `path` in the schema lm-eval's own task config reads."""
    rows = read_jsonl(path, limit)
    docs = []
    if task == "piqa":
        labels_file = str(path)[: -len(".jsonl")] + "-labels.lst"
        labels = [int(x) for x in open(labels_file).read().split()] if "goal" in rows[0] else []
        for i, r in enumerate(rows):
            if "goal" in r:
                docs.append({"goal": r["goal"], "sol1": r["sol1"], "sol2": r["sol2"],
                             "label": r.get("label", labels[i] if i < len(labels) else 0)})
            else:
                raise SystemExit(f"{path}: use the original PIQA file (goal/sol1/sol2)")
    elif task == "hellaswag":
        for r in rows:
            if "ctx_a" in r:
                docs.append(r)
                continue
            # lm-eval builds preprocess(activity_label + ": " + ctx_a + " " +
            # ctx_b.capitalize()); with ctx_b empty that is preprocess(query + " "), which is
            # the query itself for an already preprocessed query.
            label, _, rest = r["query"].partition(": ")
            docs.append({"activity_label": label, "ctx_a": rest, "ctx_b": "",
                         "endings": r["endings"], "label": str(r["label"])})
    elif task in ("arc_easy", "arc_challenge"):
        for i, r in enumerate(rows):
            if "question" in r:
                docs.append(r)
                continue
            q = r["query"]
            q = q[len("Question: "):] if q.startswith("Question: ") else q
            q = q[: -len("\nAnswer:")] if q.endswith("\nAnswer:") else q
            choices, gold = dedupe(r["choices"], r["gold"])
            docs.append({"id": str(i), "question": q,
                         "choices": {"text": choices, "label": list(LETTERS[: len(choices)])},
                         "answerKey": LETTERS[gold]})
    elif task == "boolq":
        for i, r in enumerate(rows):
            if "passage" in r:
                docs.append(r)
                continue
            q = r["query"]
            q = q[len("Passage: "):] if q.startswith("Passage: ") else q
            passage, _, question = q.rpartition("\nQuestion: ")
            if question.endswith("?"):
                question = question[:-1]
            docs.append({"passage": passage, "question": question, "label": r["gold"], "idx": i})
    elif task == "winogrande":
        for r in rows:
            if "sentence" in r:
                docs.append(r)
                continue
            a, b = r["context_options"]
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            # sentence[:idx] + option reproduces each context; sentence[idx+1:].strip() the
            # continuation.
            docs.append({"sentence": a[:n] + "_ " + r["continuation"], "option1": a[n:],
                         "option2": b[n:], "answer": str(r["gold"] + 1)})
    elif task == "lambada_openai":
        for r in rows:
            docs.append(r if "text" in r else
                        {"text": r["context"].rstrip(" ") + " " + r["continuation"].lstrip(" ")})
    elif task == "openbookqa":
        for i, r in enumerate(rows):
            if "question_stem" in r:
                docs.append(r)
                continue
            docs.append({"id": str(i), "question_stem": r["query"],
                         "choices": {"text": r["choices"],
                                     "label": list(LETTERS[: len(r["choices"])])},
                         "answerKey": LETTERS[r["gold"]]})
    return docs


def write_task(task, docs, out_dir, tasks_root):
    official, split = OFFICIAL[task]
    data = out_dir / f"{task}.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    name = f"fp4lm_{task}"
    splits = {"training_split": None, "validation_split": None, "test_split": None,
              "fewshot_split": None}
    splits["validation_split" if split == "validation" else "test_split"] = split
    config = {
        "include": str(tasks_root / official),
        "task": name,
        "tag": [],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {split: str(data)}},
        **splits,
    }
    (out_dir / f"{name}.yaml").write_text(json.dumps(config, indent=1))  # JSON is YAML
    return name


def run_fp4lm(args, files, out_dir):
    json_path = out_dir / "fp4lm.json"
    task_list = ",".join(f"{t}={p}" for t, p in files.items())
    cmd = [args.fp4lm, "eval", "-m", args.model, "--tasks", task_list, "--limit",
           str(args.limit), "--json", str(json_path)]
    if args.threads:
        cmd += ["-t", str(args.threads)]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(json_path) as f:
        return {t["task"]: t for t in json.load(f)["tasks"]}


def run_lm_eval(args, names, task_dir):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model = Path(args.model).expanduser().resolve()
    lm = HFLM(pretrained=str(model.parent), gguf_file=model.name, dtype="float32",
              device="cpu", batch_size=1)
    results = lm_eval.simple_evaluate(
        model=lm, tasks=names, num_fewshot=0, limit=args.limit, log_samples=True,
        bootstrap_iters=0, task_manager=TaskManager(include_path=str(task_dir)))
    return lm, results


def argmax(values):
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def compare(task, ours, samples, lm):
    """Per-item comparison of one task; returns a summary dict."""
    items = ours["items"]
    by_doc = {s["doc_id"]: s for s in samples}
    diffs, n_req, pred_same, norm_same, greedy_same, tok_same = [], 0, 0, 0, 0, 0
    mismatches = []
    for item in items:
        s = by_doc.get(item["doc"])
        if s is None:
            mismatches.append(f"doc {item['doc']}: not in lm-eval's samples")
            continue
        theirs = [(float(r[0][0]), bool(r[0][1])) for r in s["resps"]]
        mine = item["loglikelihood"][0]
        if len(theirs) != len(mine):
            mismatches.append(f"doc {item['doc']}: {len(mine)} vs {len(theirs)} requests")
            continue
        for c, ((ll, greedy), args) in enumerate(zip(theirs, s["arguments"])):
            n_req += 1
            diffs.append(abs(mine[c] - ll))
            greedy_same += item["greedy"][0][c] == greedy
            ctx, cont = args[0], args[1]
            if (ctx, cont) != (item["requests"][c]["context"], item["requests"][c]["continuation"]):
                mismatches.append(f"doc {item['doc']} choice {c}: request text differs: "
                                  f"{(ctx, cont)!r} vs {item['requests'][c]!r}")
            _, cont_enc = lm._encode_pair(ctx, cont)
            tok_same += len(cont_enc) == item["continuation_tokens"][0][c]
        if task != "lambada_openai":
            lls = [t[0] for t in theirs]
            same = argmax(lls) == item["pred"][0]
            pred_same += same
            if not same:
                mismatches.append(f"doc {item['doc']}: acc choice {item['pred'][0]} vs "
                                  f"{argmax(lls)}")
            if "acc_norm" in s:
                # lm-eval's own per-doc acc_norm must agree with ours.
                ours_norm = float(item["pred_norm"][0] == item["gold"])
                norm_same += ours_norm == float(s["acc_norm"])
            else:
                norm_same += 1
        else:
            pred_same += theirs[0][1] == item["greedy"][0][0]
            norm_same += 1
    n = len(items)
    return {
        "task": task, "items": n, "requests": n_req,
        "max_abs_ll_diff": max(diffs) if diffs else None,
        "mean_abs_ll_diff": sum(diffs) / len(diffs) if diffs else None,
        "same_choice": pred_same, "same_acc_norm": norm_same, "same_greedy": greedy_same,
        "same_token_count": tok_same,
        "acc_fp4lm": ours["metrics"][0]["acc"],
        "mismatches": mismatches,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a GGUF file transformers can load")
    p.add_argument("--fp4lm", default="build/bin/fp4lm")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--testdata", default="tests/testdata/harness",
                   help="hand-made files for tasks missing from --data-dir; '' = none")
    p.add_argument("--tasks", default=",".join(CANDIDATES))
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=1e-2,
                   help="largest |log-likelihood difference| accepted (nats per request)")
    p.add_argument("--out", default="/tmp/lm_eval_compare")
    args = p.parse_args()

    out_dir = Path(args.out)
    shutil.rmtree(out_dir, ignore_errors=True)
    task_dir = out_dir / "tasks"
    task_dir.mkdir(parents=True)
    import lm_eval
    tasks_root = Path(lm_eval.__file__).parent / "tasks"

    files, names, source = {}, {}, {}
    for task in args.tasks.split(","):
        for root, kind in ((args.data_dir, "data"), (args.testdata, "testdata")):
            if not root:
                continue
            hits = [Path(root) / c for c in CANDIDATES[task] if (Path(root) / c).exists()]
            if hits:
                files[task] = str(hits[0].resolve())
                source[task] = kind
                break
        if task not in files:
            print(f"skipping {task}: no file", file=sys.stderr)
            continue
        docs = to_lm_eval_docs(task, files[task], args.limit)
        names[task] = write_task(task, docs, task_dir, tasks_root)

    ours = run_fp4lm(args, files, out_dir)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    lm, results = run_lm_eval(args, list(names.values()), task_dir)

    summary = []
    for task, name in names.items():
        s = compare(task, ours[task], results["samples"][name], lm)
        s["source"] = source[task]
        r = results["results"][name]
        s["acc_lm_eval"] = r.get("acc,none")
        summary.append(s)
    with open(out_dir / "compare.json", "w") as f:
        json.dump({"model": args.model, "limit": args.limit, "tasks": summary}, f, indent=1)

    print(f"## fp4lm eval vs lm-evaluation-harness {lm_eval.__version__} "
          f"(first {args.limit} items, {args.model})\n")
    print("| task | source | items | requests | same choice | same acc_norm | same greedy "
          "| same #tokens | max abs Δll | mean abs Δll | acc fp4lm | acc lm-eval |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for s in summary:
        print(f"| {s['task']} | {s['source']} | {s['items']} | {s['requests']} | "
              f"{s['same_choice']}/{s['items']} | {s['same_acc_norm']}/{s['items']} | "
              f"{s['same_greedy']}/{s['requests']} | {s['same_token_count']}/{s['requests']} | "
              f"{s['max_abs_ll_diff']:.2e} | {s['mean_abs_ll_diff']:.2e} | "
              f"{s['acc_fp4lm']:.4f} | {s['acc_lm_eval']:.4f} |")
        ok &= not s["mismatches"] and s["same_choice"] == s["items"]
        ok &= s["same_acc_norm"] == s["items"] and s["same_greedy"] == s["requests"]
        ok &= s["same_token_count"] == s["requests"]
        ok &= s["max_abs_ll_diff"] is not None and s["max_abs_ll_diff"] <= args.tolerance
        for m in s["mismatches"][:10]:
            print(f"  - {s['task']}: {m}")
    print(f"\n{'AGREE' if ok else 'DISAGREE'} (tolerance {args.tolerance} nats); "
          f"details in {out_dir / 'compare.json'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
