"""`mvlm bench model`: model-only forward latency (batch 1, tracker-shaped inputs), parameter
counts and peak memory for a model preset, fp32 and bf16 autocast, TF and BBOX modes.

The tracker caches the sentence embedding, so the per-frame cost is one forward with `text_emb`;
the text tower cost (once per sentence) is reported apart as `encode_text_ms`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

# per-frame model budget on 2 CPU cores for the tiny TF tracker (>= 60 FPS end to end)
TINY_TF_FP32_TARGET_MS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-modes", default="tf,bbox", help="comma list of tf, bbox")
    parser.add_argument("--model-sentence", default="the small red circle moving to the left",
                        help="sentence for the text-tower timing")
    parser.add_argument("--model-no-bf16", action="store_true", help="skip the bf16 autocast runs")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _time(fn, repeats: int, device) -> dict:
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(times[0], 3),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3), "repeats": repeats}


def run(args: argparse.Namespace) -> dict:
    import torch

    from mvlm.config import model_config
    from mvlm.model.net import MVLMNet, parameter_counts

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = args.repeats or (30 if args.preset == "tiny" else 10)
    modes = [m.strip() for m in args.model_modes.split(",") if m.strip()]
    dtypes = ["fp32"] if args.model_no_bf16 else ["fp32", "bf16"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = _maxrss_mb()

    torch.manual_seed(0)
    start = time.perf_counter()
    cfg = model_config({"template_free": False}, preset=args.preset)  # built once, mode toggled
    model = MVLMNet(cfg).to(device).eval()
    build_s = time.perf_counter() - start
    body = model.encoder.body
    s, t = cfg.encoder.search_size, cfg.encoder.template_size
    search = torch.randn(1, cfg.encoder.in_chans, s, s, device=device)
    templates = [torch.randn(1, cfg.encoder.in_chans, t, t, device=device) for _ in range(cfg.num_templates)]

    result: dict = {"preset": args.preset, "device": str(device), "threads": torch.get_num_threads(),
                    "build_s": round(build_s, 2), "parameters": parameter_counts(model),
                    "search_size": s, "template_size": t, "latency": {}}
    with torch.no_grad():
        for dtype in dtypes:
            autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
            with autocast:
                if cfg.text.tower:
                    result["latency"][f"encode_text_{dtype}"] = _time(
                        lambda: model.text_encoder([args.model_sentence]), max(3, repeats // 3), device)
                text_emb = (model.text_encoder([args.model_sentence]) if cfg.text.tower
                            else torch.randn(1, cfg.text.context_length, body.embed_dim, device=device))
                for mode in modes:
                    body.template_free = mode == "tf"
                    tokens = 1 + body.num_search_tokens + text_emb.shape[1] + (
                        0 if mode == "tf" else len(templates) * body.num_template_tokens)
                    timing = _time(lambda: model(search, templates, text_emb=text_emb), repeats, device)
                    result["latency"][f"{mode}_{dtype}"] = {**timing, "tokens": tokens}
    body.template_free = cfg.template_free

    result["peak_memory_mb"] = (
        round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda"
        else round(_maxrss_mb(), 1))
    result["peak_memory_source"] = "cuda.max_memory_allocated" if device.type == "cuda" else "ru_maxrss"
    result["maxrss_delta_mb"] = round(_maxrss_mb() - rss_before, 1)
    if args.preset == "tiny" and "tf_fp32" in result["latency"]:
        result["target_tf_fp32_ms"] = TINY_TF_FP32_TARGET_MS
        result["targets_met"] = result["latency"]["tf_fp32"]["median_ms"] <= TINY_TF_FP32_TARGET_MS
    return result
