#!/usr/bin/env python3
"""Throughput and latency of Modulo's embedding engine against sentence-transformers (PyTorch),
same model files, same texts, same thread count, measured in the same run.

Prints the machine, then for each engine: 128-token chunks/s (batches of 32), achieved GFLOP/s
over the whole forward pass, and the p50 latency of single 16-token queries; then the ratios and
the encoder's efficiency against the oneDNN GEMM rate measured in the same run, and the machine's
instruction peaks (fp32 FMA, bf16 and int8 dot products; the ceilings no engine can pass) with the
chunks/s and query latency they allow. Engines are run
in alternation for --rounds rounds and the best round of each is kept (the machines are shared;
the best round is the least disturbed one).

Usage: bench/embed/compare.sh [--threads 2] [--chunks 256] [--rounds 2]
  (needs the model: scripts/fetch-model.sh; and the reference stack in .venv-golden:
   tools/golden/requirements.txt)
"""
import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def flops(h, f, layers, length):
    return layers * (2.0 * length * (4 * h * h + 2 * h * f) + 4.0 * length * length * h)


def make_texts(tok, n_chunks, n_queries, seed=11):
    """Texts of exactly 128 and 16 tokens (with [CLS]/[SEP]) under the model's tokenizer."""
    rng = random.Random(seed)
    vocab = [w for w in tok.get_vocab() if w.isalpha() and w.isascii() and len(w) > 2]
    vocab.sort()

    def build(target):
        words = []
        while True:
            words.append(rng.choice(vocab))
            n = len(tok(" ".join(words))["input_ids"])
            if n >= target:
                while len(tok(" ".join(words))["input_ids"]) > target:
                    words.pop()
                if len(tok(" ".join(words))["input_ids"]) == target:
                    return " ".join(words)
                words = []

    return [build(128) for _ in range(n_chunks)], [build(16) for _ in range(n_queries)]


def run_st(model, chunks, queries, batch):
    import torch
    with torch.inference_mode():
        model.encode(chunks[:batch], batch_size=batch)  # warm-up
        t0 = time.perf_counter()
        model.encode(chunks, batch_size=batch)
        sec = time.perf_counter() - t0
        for q in queries[:20]:
            model.encode([q], batch_size=1)
        p50 = {}
        for pause in (0.001, 0.0):
            lat = []
            for q in queries:
                time.sleep(pause)
                t = time.perf_counter()
                model.encode([q], batch_size=1)
                lat.append((time.perf_counter() - t) * 1e3)
            p50[pause] = statistics.median(lat)
    return len(chunks) / sec, p50[0.001], p50[0.0]


def run_modulo(binary, model_dir, path_chunks, path_queries, precision, threads, batch):
    def call(*args):
        out = subprocess.run([binary, "--model", model_dir, "--threads", str(threads), "--precision", precision, *args],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    thr = call("--texts", path_chunks, "--batch", str(batch), "--rounds", "1")
    # A lone query reaches an idle engine: 1 ms apart (untimed), as in a server at one connection.
    lat = call("--texts", path_queries, "--mode", "latency", "--rounds", "1", "--pause-us", "1000")
    b2b = call("--texts", path_queries, "--mode", "latency", "--rounds", "1")
    return thr["texts_per_s"], lat["p50_ms"], b2b["p50_ms"], thr["precision"]


def gemm(binary, threads, precision):
    out = subprocess.run([binary, "--mode", "gemm", "--threads", str(threads), "--precision", precision,
                          "--batch", "1024"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["gflops"]


def peaks(binary, threads):
    out = subprocess.run([binary, "--mode", "peak", "--threads", str(threads)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=256)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build-embed", "embed", "modulo_embed_bench"))
    args = ap.parse_args()

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device="cpu")
    cfg = model[0].auto_model.config
    chunks, queries = make_texts(model.tokenizer, args.chunks, args.queries)
    gf_chunk = flops(cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, 128) / 1e9

    tmp = tempfile.mkdtemp(prefix="modulo-embed-bench-")
    pc, pq = os.path.join(tmp, "chunks.txt"), os.path.join(tmp, "queries.txt")
    with open(pc, "w") as f:
        f.write("\n".join(chunks) + "\n")
    with open(pq, "w") as f:
        f.write("\n".join(queries) + "\n")

    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}")
    print(f"model: {args.model}; threads: {args.threads}; {len(chunks)} chunks of 128 tokens "
          f"(batch {args.batch}); {len(queries)} queries of 16 tokens (batch 1)")
    print(f"reference: torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}")

    best = {}
    def keep(name, *figures):  # chunks/s (best: highest), then latencies (best: lowest)
        old = best.get(name, figures)
        best[name] = (max(figures[0], old[0]), *map(min, figures[1:], old[1:]))

    gemm_rates, peak_rates = {}, {}
    for r in range(args.rounds):
        keep("sentence-transformers fp32", *run_st(model, chunks, queries, args.batch))
        for prec in ("fp32", "bf16", "int8"):
            cps, p50, b2b, eff = run_modulo(args.binary, args.model, pc, pq, prec, args.threads, args.batch)
            keep(f"modulo {eff}", cps, p50, b2b)
        for prec in ("fp32", "bf16"):
            gemm_rates[prec] = max(gemm_rates.get(prec, 0), gemm(args.binary, args.threads, prec))
        for key, rate in peaks(args.binary, args.threads).items():
            if key.endswith(("_gflops", "_gops")) and rate is not None:
                peak_rates[key] = max(peak_rates.get(key, 0), rate)

    st = best["sentence-transformers fp32"][0]
    print()
    print(f"{'engine':<28} {'chunks/s':>9} {'GFLOP/s':>8} {'vs ST':>6} {'q16 p50 ms':>10} {'back to back':>12}")
    for name, (cps, p50, b2b) in best.items():
        print(f"{name:<28} {cps:9.1f} {cps * gf_chunk:8.1f} {cps / st:5.2f}x {p50:10.3f} {b2b:12.3f}")
    print("q16: one query at a time, 1 ms apart (a lone request reaching an idle engine); "
          "back to back: no pause between them")
    print()
    for prec, rate in gemm_rates.items():
        name = f"modulo {prec}"
        if name in best:
            print(f"oneDNN GEMM rate ({prec}, 1024x384x1536, same run): {rate:.1f} GFLOP/s; "
                  f"{name} end-to-end: {100 * best[name][0] * gf_chunk / rate:.0f}% of it")
    # The machine's arithmetic ceilings: no engine on this machine can pass them.
    print()
    gf_query = flops(cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, 16) / 1e9
    for key, prec in (("fp32_gflops", "fp32"), ("bf16_gflops", "bf16"), ("int8_gops", "int8")):
        if key not in peak_rates:
            print(f"instruction peak ({prec}): the CPU lacks the instructions")
            continue
        rate = peak_rates[key]
        line = (f"instruction peak ({prec}, {args.threads} threads, same run): {rate:.1f} G{'OPS' if prec == 'int8' else 'FLOP/s'}"
                f" = at most {rate / gf_chunk:.1f} chunks/s of 128 tokens; a 16-token query takes at least "
                f"{1e3 * gf_query / (rate / args.threads):.2f} ms on one thread, {1e3 * gf_query / rate:.2f} ms on all")
        name = f"modulo {prec}"
        if name in best:
            line += f"; {name} reaches {100 * best[name][0] * gf_chunk / rate:.0f}% of the peak"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
