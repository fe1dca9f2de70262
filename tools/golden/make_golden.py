#!/usr/bin/env python3
"""Generates the embedding engine's golden vectors with the reference stack.

For every text below it records the token ids of the reference tokenizer (Hugging Face
`tokenizers`, via the model's tokenizer.json/vocab.txt, truncated at the model's max_seq_length)
and the sentence-transformers (PyTorch, fp32) embedding of the same model files. The C++ tests
(src/modulo/embed/golden_test.cpp) require identical ids and cosine >= 0.9999 for each text.

Usage: .venv-golden/bin/python tools/golden/make_golden.py [MODEL_DIR] [OUT_JSON]
  defaults: models/all-MiniLM-L6-v2, tests/data/embed/golden_minilm.json
"""
import json
import os
import random
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def texts():
    t = [
        "",
        "hello",
        "Hello, world!",
        "What is the capital of France?",
        "How do I reset my password?",
        "The quick brown fox jumps over the lazy dog.",
        "RAG systems combine retrieval with generation.",
        "Vector search finds nearest neighbours in embedding space.",
        "a",
        "   leading and trailing spaces   ",
        "tabs\tand\nnewlines\r\nmixed",
        "UPPER CASE TEXT SHOULD BE LOWERED",
        "don't won't can't shouldn't",
        "e-mail: someone@example.com, web: https://example.org/path?q=1&x=y#frag",
        "C++ templates: std::vector<std::pair<int, float>> v{};",
        "def f(x):\n    return x ** 2  # square",
        "$100.00 + 15% = $115.00 (approx.)",
        "!!!???...,,,;;;:::---___***",
        "((([[[{{{<<<>>>}}}]]])))",
        "\"Quoted\" 'single' `back` «guillemets» „German“ ‘curly’",
        "Numbers: 3.14159, 2,718, 1e-9, 0x1F, 42nd, 1st",
        "café naïve résumé coöperate façade",
        "Ångström Øresund Ærø straße",
        "Crème brûlée à la carte, s'il vous plaît.",
        "İstanbul ıı İİ Iı",
        "Ελληνικά: Καλημέρα κόσμε, ΣΊΣΥΦΟΣ",
        "Русский текст: Привет, мир! Ёлка.",
        "العربية: مرحبا بالعالم",
        "עברית: שלום עולם",
        "हिन्दी: नमस्ते दुनिया",
        "ภาษาไทย สวัสดีชาวโลก",
        "中文：你好，世界！今天天气很好。",
        "日本語：こんにちは世界。カタカナ、ひらがな、漢字。",
        "한국어: 안녕하세요 세계",
        "Mixed 中文 and English 混合 text",
        "𠀀𠀁 extension B ideographs 𪜀",
        "Emoji: 😀 😂 👍 ❤️ 🎉",
        "Newer emoji: 🥰 🫠 🥹 🦩 🧋",
        "ZWJ family: 👨‍👩‍👧‍👦 and flags 🇺🇸 🇯🇵",
        "Skin tones 👍🏽 👋🏿",
        "zero\u200bwidth\u200cjoiners\u200d and BOM \ufeffhere",
        "control\x00chars\x01\x02\x7f removed",
        "non\u00a0breaking\u2003em\u3000ideographic spaces",
        "soft\u00adhyphen and line\u2028separator",
        "fullwidth ＡＢＣ１２３ ｈａｌｆ",
        "ligature ﬁ ﬂ and ½ ² ℃ ™ №",
        "math: ∑ ∫ √ ∞ ≠ ≤ ≥ ± × ÷ → ⇒ ∀ ∃",
        "combining: e\u0301 a\u0308 n\u0303 o\u0302",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism",
        "x" * 150,
        "word" * 30,
        "<html><body><p class=\"x\">Hello</p></body></html>",
        "JSON: {\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "Private use \ue000\uf8ff and replacement \ufffd chars",
        "Musical 𝄞 and math 𝔸𝕓𝒞 alphanumerics",
        "Arrows ← ↑ → ↓ and box ─│┌┐",
        "Currency € £ ¥ ₹ ₿ ¢",
        "Search query: best pizza near me",
        "passage: The Eiffel Tower is located in Paris.",
        "Ünïcödé Ŝţŕĩńġ with many diacritics: ḀḁḂḃ ẞ",
        "Vietnamese: Tiếng Việt có dấu",
        "Tamil: தமிழ் Bengali: বাংলা Georgian: ქართული Armenian: Հայերեն",
        "Mongolian ᠮᠣᠩᠭᠣᠯ and Tibetan བོད་ཡིག",
    ]
    rng = random.Random(7)
    words = ("retrieval augmented generation index vector embedding chunk document query answer model "
             "latency throughput server cache token search ranking passage relevance corpus").split()
    for n in (200, 300, 600):
        t.append(" ".join(rng.choice(words) for _ in range(n)) + ".")
    t.append(("Long paragraph with punctuation, numbers (1, 2, 3) and accents: café. " * 40).strip())
    t.append("日本語の長い文章です。" * 60)
    return t


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests", "data", "embed", "golden_minilm.json")
    import numpy as np
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(model_dir, device="cpu")
    max_len = model.max_seq_length
    items = texts()
    tok = model.tokenizer
    ids = [tok(x, truncation=True, max_length=max_len)["input_ids"] for x in items]
    with torch.inference_mode():
        emb = model.encode(items, batch_size=16, convert_to_numpy=True, normalize_embeddings=False)
    emb = emb.astype(np.float32)
    out = {
        "model": os.path.basename(os.path.normpath(model_dir)),
        "max_seq_length": max_len,
        "dimension": int(emb.shape[1]),
        "generator": {
            "script": "tools/golden/make_golden.py",
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "tokenizer_class": type(tok).__name__,
        },
        "items": [
            {"text": x, "ids": i, "embedding": [float(f"{v:.8g}") for v in e.tolist()]}
            for x, i, e in zip(items, ids, emb)
        ],
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(items)} items to {out_path}")


if __name__ == "__main__":
    main()
