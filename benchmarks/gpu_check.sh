#!/usr/bin/env bash
# GPU check for an H100/H200 box, non-interactive:
#   1. parity on CUDA of our attention paths ("sdpa", and "flash_attention_2" when flash_attn imports) against
#      transformers' "eager" attention in fp32 (TF32 off), on a random base-sized model; bf16 results must be
#      about as close to that fp32 reference as transformers' own bf16 "sdpa" run is;
#   2. inference throughput of workloads (a)-(c) on the GPU via bench_inference.py (--device cuda).
# Exits non-zero when a parity check fails (or anything else fails).
#
# Usage:   benchmarks/gpu_check.sh [extra bench_inference.py options, e.g. --repeats 20]
# Assumes: a Python with torch (CUDA build), transformers and safetensors; flash-attn optional.
#          PYTHON=/path/to/python overrides the interpreter (default: python3).
# Writes only inside the repository: build/bench-ckpt (the random checkpoint, reused) and build/gpu-cache.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO="$PWD"
PY="${PYTHON:-python3}"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_HOME="$REPO/build/gpu-cache/hf" TRITON_CACHE_DIR="$REPO/build/gpu-cache/triton"
export TORCHINDUCTOR_CACHE_DIR="$REPO/build/gpu-cache/inductor"

"$PY" - <<'EOF'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA device")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
try:
    import flash_attn
    print(f"flash_attn {flash_attn.__version__}")
except ImportError:
    print("flash_attn not importable: flash_attention_2 is skipped")
EOF

echo
echo "== parity on CUDA =="
"$PY" - <<'EOF'
import sys
import warnings

import torch

sys.path.insert(0, "benchmarks")
from common import ensure_checkpoint, pad_batch, quiet_transformers, random_texts  # noqa: E402

quiet_transformers()
warnings.filterwarnings("ignore")
import transformers  # noqa: E402

from modernbert.model import ModernBertModel  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")
ckpt = ensure_checkpoint()
try:
    import flash_attn  # noqa: F401
    has_fa = True
except ImportError:
    has_fa = False

# A padded batch with lengths below, at and far above the 128-token window, and one long text.
batches = [pad_batch(random_texts([700, 257, 129, 130, 64, 17, 1, 512], seed=1)),
           pad_batch(random_texts([4096], seed=2))]


def run(model):
    outs = []
    with torch.inference_mode():
        for ids, mask in batches:
            out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).last_hidden_state
            outs.append(out[mask.to(dev).bool()].float())
    return torch.cat(outs)


def hf(attn, dtype):
    return transformers.ModernBertModel.from_pretrained(str(ckpt), attn_implementation=attn, dtype=dtype).to(dev).eval()


def ours(attn, dtype):
    return ModernBertModel.from_pretrained(str(ckpt), attn_implementation=attn, dtype=dtype, device=dev)


gold = run(hf("eager", torch.float32))
print(f"reference: transformers eager fp32, {gold.shape[0]} real tokens, mean |h| {gold.abs().mean():.3f}")
cands = [("transformers sdpa bf16", lambda: hf("sdpa", torch.bfloat16)),
         ("transformers sdpa fp32", lambda: hf("sdpa", torch.float32)),
         ("ours sdpa fp32", lambda: ours("sdpa", torch.float32)),
         ("ours eager fp32", lambda: ours("eager", torch.float32)),
         ("ours sdpa bf16", lambda: ours("sdpa", torch.bfloat16))]
if has_fa:
    cands += [("transformers flash_attention_2 bf16", lambda: hf("flash_attention_2", torch.bfloat16)),
              ("ours flash_attention_2 bf16", lambda: ours("flash_attention_2", torch.bfloat16))]
errs = {}
for name, make in cands:
    model = make()
    d = (run(model) - gold).abs()
    errs[name] = (float(d.max()), float(d.mean()))
    del model
    torch.cuda.empty_cache()

base_max, base_mean = errs["transformers sdpa bf16"]
failed = []
print(f"{'candidate':<38} {'max|d|':>10} {'mean|d|':>10}  verdict")
for name, (mx, mean) in errs.items():
    if "transformers" in name:
        verdict = "(baseline)"
    elif "fp32" in name:
        ok = mx < 1e-3
        verdict = "ok" if ok else "FAIL: fp32 max |d| >= 1e-3"
    else:  # bf16: as close to the fp32 reference as transformers' own bf16 run, with some slack
        ok = mean <= 2 * base_mean + 1e-3 and mx <= 3 * base_max + 1e-2
        verdict = "ok" if ok else "FAIL: bf16 error above 2x mean / 3x max of transformers sdpa bf16"
    if not verdict.startswith(("ok", "(")):
        failed.append(name)
    print(f"{name:<38} {mx:10.2e} {mean:10.2e}  {verdict}")
if failed:
    sys.exit(f"gpu_check: parity FAILED for {', '.join(failed)}")
print("parity ok")
EOF

echo
echo "== throughput on CUDA: sdpa on both sides =="
"$PY" benchmarks/bench_inference.py --device cuda --workloads a,b,c --dtypes bf16,fp32 \
    --sides ours,ours_packed,hf --repeats 10 --warmup 3 "$@"

if "$PY" -c "import flash_attn" 2>/dev/null; then
    echo
    echo "== throughput on CUDA: flash_attention_2 on both sides =="
    "$PY" benchmarks/bench_inference.py --device cuda --workloads a,b,c --dtypes bf16 \
        --sides ours,ours_packed,hf --attn flash_attention_2 --hf-attn flash_attention_2 \
        --repeats 10 --warmup 3 "$@"
fi
echo
echo "gpu_check: done"
