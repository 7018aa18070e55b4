"""Builds the step-level judgement corpus, bench/corpus/steps.json: REAL PyTorch trainings on CPU, every step logged.

    OMP_NUM_THREADS=1 python bench/step_corpus.py [--only=part-of-id,...] [--out=path] [--jobs=N]

Needs torch (CPU is enough; 2.x). The 60 runs took 12 min 39 s of CPU (torch 2.13.0+cpu, Python 3.11.7; see
docs/judgement.md, "The step corpus"); --jobs=2 runs two trainings at once.

The model is a small byte-level decoder-only transformer (2 pre-norm blocks, width 64, 4 heads, context 32 bytes,
vocabulary 256; 0.1 M parameters), written out by hand (causal scaled_dot_product_attention) rather than
nn.TransformerEncoder, which was about 2x slower per step on one core. A transformer, not a GRU: at this size one step
costs ~15 ms on one core, so a 1,000-step run takes ~15-20 s of CPU.

The text is Python's own standard library source (STDLIB_FILES, read from sysconfig's stdlib path), concatenated and cut
into 1,024-byte blocks: block i goes to validation when i % 10 == 8, to the held-out TEST split when i % 10 == 9, and to
training otherwise, so the three never share a byte. The corpus records the Python version and the text's SHA-256; a
different Python ships different source, so a rebuild elsewhere gives different (equally valid) curves.

Every step logs train_loss (the batch's mean cross-entropy, nats per byte, before the update), learning_rate, grad_norm
(the total L2 norm of the gradients BEFORE clipping to 1.0) and step_time (wall seconds for the step, data loading
included). Every EVAL_EVERY (50) steps, and at the last step, after the update: val_loss (posted by the replay) and
test_loss (the held-out loss, NEVER posted: the labels are read from it alone), each on fixed windows of its split that
are the same for every run.

Seeded and deterministic: the seed fixes the initial weights and the batches (torch.use_deterministic_algorithms); a
rebuild on the same torch and Python gives the same curves except step_time, which is a measurement. Split by seed (half_of):
seeds below REPORT_SEEDS_FROM (100) are the tune half, the rest the report half; every plan is trained at two seeds of each.

Each plan (PLANS) is a run kind: healthy, noisy small batches, transient spikes that recover (a few steps at 30x the
learning rate; corrupted batches of random bytes), blow-ups that do not recover (a learning rate growing past stability;
a sustained too-high one), NaN (an inf injected into the embeddings; a learning rate so high the logits overflow), overfitting
(an 8 or 16 KiB training subset, 1,500 steps), never learning (learning rate ~0; all weights frozen but the attention key bias, whose gradient is ~0), and slow-downs
(the data loader sleeps for a stretch of steps). Every number in a curve is what the training produced; nothing is
written into a log by hand. Labels (label_run, DEFINITIONS) come from the held-out test loss and, for when a spike or
slow-down happened, the injected steps; a run whose held-out loss does not show what its plan meant is relabelled and
keeps the reason. No run is dropped. bench/step_corpus_format.ts recomputes the labels and tests/step_corpus_labels.test.ts
checks they equal the stored ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import sysconfig
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS_PATH = os.path.join(ROOT, "bench", "corpus", "steps.json")

STDLIB_FILES = [
    "argparse.py",
    "textwrap.py",
    "difflib.py",
    "inspect.py",
    "json/decoder.py",
    "json/encoder.py",
    "collections/__init__.py",
    "functools.py",
    "heapq.py",
    "shlex.py",
    "string.py",
    "fractions.py",
    "calendar.py",
    "csv.py",
]
BLOCK = 1024
CONTEXT = 32
WIDTH, LAYERS, HEADS = 64, 2, 4
EVAL_EVERY = 50
EVAL_WINDOWS = 128
CLIP = 1.0
WARMUP = 50
REPORT_SEEDS_FROM = 100
TUNE_SEEDS = (1, 2)
REPORT_SEEDS = (101, 102)

# ── Label thresholds. Read from test_loss alone; none of them is a rule's parameter (no step rule exists yet). ──
DIVERGE_FACTOR = 2.0  # onset: test loss non-finite or >= 2x its best before that evaluation ...
DIVERGE_STAYS = 1.5  # ... and never back below 1.5x that best at any later evaluation
SPIKE_RECOVERY = 0.05  # a spike recovered if the test loss is within 5 % of its pre-spike value ...
SPIKE_RECOVERY_EVALS = 5  # ... at one of the next 5 evaluations after the spike's last step
OVERFIT_RISE = 1.1  # overfit: test loss at the end >= 1.1x its best
STALL_GAIN = 0.05  # stalled: test loss never 5 % below its first value

DEFINITIONS = {
    "steps": "step s = 0 ... n-1; curves.* are arrays indexed by step; evals.* are parallel arrays at evals.step",
    "train_loss": "mean cross-entropy (nats per byte) of the step's batch, before the step's update",
    "learning_rate": "the learning rate the step's update used",
    "grad_norm": f"total L2 norm of all gradients before clipping to {CLIP}",
    "step_time": "wall seconds of the step, data loading included (a measurement: not reproducible)",
    "val_loss": f"mean cross-entropy on {EVAL_WINDOWS} fixed validation windows, after the update of steps s with s % {EVAL_EVERY} == 0 and of the last step; posted by the replay",
    "test_loss": f"the same on {EVAL_WINDOWS} fixed windows of the held-out TEST split (blocks i % 10 == 9), at the same steps; never posted; the only curve the labels read",
    "half": f"from the seed alone: seed < {REPORT_SEEDS_FROM} tune (rules are tuned on it), seed >= {REPORT_SEEDS_FROM} report (nothing is tuned on it)",
    "events": "what the plan injected and when (steps, inclusive): the ground truth of WHEN a spike or slow-down happened, not of its judgement",
    "nan_step": "first step whose train_loss is non-finite (a fact of the run); null if none",
    "held_out_best_step": "eval step of the lowest finite test_loss (ties: earliest); null if none is finite",
    "diverged_onset_step": f"first eval step e where test_loss is non-finite or >= {DIVERGE_FACTOR}x the lowest finite test_loss before e, and at every later eval it stays non-finite or >= {DIVERGE_STAYS}x that same best; null if none",
    "spikes": f"for each injected spike (events.spikes): recovered = not diverged at or before its end and, at one of the next {SPIKE_RECOVERY_EVALS} evals after its last step, test_loss <= (1 + {SPIKE_RECOVERY}) x the last test_loss before its first step",
    "overfit": f"not diverged, held-out best before the last eval, and the last test_loss >= {OVERFIT_RISE}x the best",
    "stalled": f"not diverged and the lowest finite test_loss is less than {100 * STALL_GAIN:g} % below the first",
    "kind": "in order: nan (nan_step set and diverged), diverged, overfit, stalled, spike (spikes injected), slowdown (slow-down injected), noisy (planned noisy), healthy",
    "relabel_reason": "why kind differs from planned_kind (what the held-out loss did); null when the run behaved as planned",
}


@dataclass
class Plan:
    id: str
    kind: str  # planned kind
    steps: int = 1000
    lr: float = 3e-3
    batch: int = 16
    note: str = ""
    # (from, to, factor): multiply the lr for steps from..to inclusive (a spike)
    lr_spikes: list[tuple[int, int, float]] = field(default_factory=list)
    # (from, to): batches of uniformly random bytes for these steps (a corrupted batch)
    corrupt: list[tuple[int, int]] = field(default_factory=list)
    lr_growth_from: int | None = None  # lr x lr_growth per step from this step on
    lr_growth: float = 1.0
    lr_cap: float = float("inf")
    lr_jump_from: int | None = None  # the lr becomes lr_jump from this step on
    lr_jump: float = 0.0
    inf_at: int | None = None  # +inf added to one embedding at this step
    train_bytes: int | None = None  # training subset: the first N bytes of the training split
    # Parameter left trainable, all others frozen. "blocks.0.qkv.bias" keeps only its key slice: a bias added to every key
    # shifts each query's scores by a constant, which softmax ignores, so the run never learns while its optimizer runs.
    freeze_all_but: str | None = None
    sleep: tuple[int, int, float] | None = None  # (from, to, seconds): the loader sleeps before these steps


PLANS = [
    Plan("healthy", "healthy", note="batch 16, lr 3e-3 after 50 warm-up steps"),
    Plan("healthy-low-lr", "healthy", steps=1000, lr=1e-3, note="batch 16, lr 1e-3"),
    Plan("noisy-b2", "noisy", steps=1200, lr=1e-3, batch=2, note="batch 2"),
    Plan("noisy-b1", "noisy", steps=1200, lr=5e-4, batch=1, note="batch 1"),
    Plan("spike-lr", "spike", lr_spikes=[(500, 502, 20.0)], note="lr x20 for steps 500-502"),
    Plan("spike-corrupt", "spike", corrupt=[(400, 400), (700, 702)], note="random-byte batches at step 400 and 700-702"),
    Plan("blowup-ramp", "diverged", steps=800, lr_growth_from=300, lr_growth=1.03, lr_cap=3.0,
         note="lr x1.03 per step from step 300, capped at 3"),
    Plan("blowup-high", "diverged", steps=800, lr_jump_from=300, lr_jump=1.0, note="lr 1.0 from step 300 on"),
    Plan("nan-inf", "nan", steps=700, inf_at=400, note="+inf in one embedding vector at step 400"),
    Plan("nan-lr", "nan", steps=600, lr_jump_from=300, lr_jump=1e5, note="lr 1e5 from step 300: the logits overflow"),
    Plan("overfit-16k", "overfit", steps=1500, train_bytes=16384, note="16 KiB training subset, 1500 steps"),
    Plan("overfit-8k", "overfit", steps=1500, train_bytes=8192, note="8 KiB training subset, 1500 steps"),
    Plan("stalled-lr0", "stalled", steps=700, lr=1e-7, note="lr 1e-7"),
    Plan("stalled-frozen", "stalled", steps=700, freeze_all_but="blocks.0.qkv.bias",
         note="every weight frozen but block 0's attention key bias (softmax ignores it: its gradient is ~0)"),
    Plan("slowdown", "slowdown", sleep=(400, 599, 0.03), note="the data loader sleeps 30 ms before steps 400-599"),
]


def half_of(seed: int) -> str:
    return "report" if seed >= REPORT_SEEDS_FROM else "tune"


# ── Data ──


def load_text() -> tuple[bytes, str]:
    root = sysconfig.get_paths()["stdlib"]
    text = b"".join(open(os.path.join(root, f), "rb").read() for f in STDLIB_FILES)
    return text, hashlib.sha256(text).hexdigest()


def split_text(text: bytes) -> dict[str, bytes]:
    out = {"train": bytearray(), "val": bytearray(), "test": bytearray()}
    blocks = [text[i : i + BLOCK] for i in range(0, len(text), BLOCK)]
    for i, b in enumerate(blocks):
        out["val" if i % 10 == 8 else "test" if i % 10 == 9 else "train"] += b
    return {k: bytes(v) for k, v in out.items()}


def fixed_windows(data: bytes, n: int) -> torch.Tensor:
    """n windows of CONTEXT+1 bytes at fixed positions, evenly spread: the same for every run."""
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    starts = torch.linspace(0, len(data) - CONTEXT - 2, n).long()
    return torch.stack([t[s : s + CONTEXT + 1] for s in starts])


# ── Model ──


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.qkv, self.proj = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
        self.fc, self.out = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, HEADS, d // HEADS).transpose(1, 2) for z in self.qkv(self.ln1(x)).split(d, 2))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class ByteLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(256, WIDTH), nn.Embedding(CONTEXT, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln, self.head = nn.LayerNorm(WIDTH), nn.Linear(WIDTH, 256)

    def forward(self, x: torch.Tensor, inject_inf: bool = False) -> torch.Tensor:
        h = self.tok(x) + self.pos(torch.arange(x.shape[1]))
        if inject_inf:
            h = h.clone()
            h[0, 0, 0] = float("inf")
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln(h))


def loss_of(model: ByteLM, w: torch.Tensor, inject_inf: bool = False) -> torch.Tensor:
    logits = model(w[:, :-1], inject_inf)
    return F.cross_entropy(logits.reshape(-1, 256), w[:, 1:].reshape(-1))


@torch.no_grad()
def evaluate(model: ByteLM, windows: torch.Tensor) -> float:
    return sum(loss_of(model, windows[i : i + 32]).item() for i in range(0, len(windows), 32)) / (len(windows) // 32)


# ── Training ──


def lr_at(p: Plan, s: int) -> float:
    lr = p.lr * min(1.0, (s + 1) / WARMUP)
    if p.lr_growth_from is not None and s >= p.lr_growth_from:
        lr = min(p.lr_cap, lr * p.lr_growth ** (s - p.lr_growth_from + 1))
    if p.lr_jump_from is not None and s >= p.lr_jump_from:
        lr = p.lr_jump
    for a, b, f in p.lr_spikes:
        if a <= s <= b:
            lr *= f
    return lr


def events_of(p: Plan) -> dict:
    spikes = [[a, b] for a, b, _ in p.lr_spikes] + [[a, b] for a, b in p.corrupt]
    return {
        "spikes": sorted(spikes),
        "slowdowns": [[p.sleep[0], p.sleep[1]]] if p.sleep else [],
        "lr_change_step": p.lr_growth_from if p.lr_growth_from is not None else p.lr_jump_from,
        "inf_step": p.inf_at,
    }


def sig6(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return float(f"{v:.6g}")


def train(p: Plan, seed: int) -> dict:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    text, _ = load_text()
    splits = split_text(text)
    train_data = splits["train"][: p.train_bytes] if p.train_bytes else splits["train"]
    train_t = torch.frombuffer(bytearray(train_data), dtype=torch.uint8).long()
    val_w, test_w = fixed_windows(splits["val"], EVAL_WINDOWS), fixed_windows(splits["test"], EVAL_WINDOWS)

    torch.manual_seed(seed)
    model = ByteLM()
    if p.freeze_all_but:
        for name, prm in model.named_parameters():
            prm.requires_grad_(name == p.freeze_all_but)
            if name == p.freeze_all_but == "blocks.0.qkv.bias":
                keep = torch.zeros_like(prm)
                keep[WIDTH : 2 * WIDTH] = 1.0
                prm.register_hook(lambda g, keep=keep: g * keep)
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=p.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed * 7919 + 17)
    cur = {k: [] for k in ("train_loss", "learning_rate", "grad_norm", "step_time")}
    ev = {k: [] for k in ("step", "val_loss", "test_loss")}
    corrupt = {s for a, b in p.corrupt for s in range(a, b + 1)}
    started = time.perf_counter()
    for s in range(p.steps):
        t0 = time.perf_counter()
        if p.sleep and p.sleep[0] <= s <= p.sleep[1]:
            time.sleep(p.sleep[2])  # a starving data loader
        if s in corrupt:
            batch = torch.randint(0, 256, (p.batch, CONTEXT + 1), generator=gen)
        else:
            starts = torch.randint(0, len(train_t) - CONTEXT - 1, (p.batch,), generator=gen)
            batch = torch.stack([train_t[i : i + CONTEXT + 1] for i in starts.tolist()])
        lr = lr_at(p, s)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        loss = loss_of(model, batch, inject_inf=(s == p.inf_at))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        cur["step_time"].append(time.perf_counter() - t0)
        cur["train_loss"].append(loss.item())
        cur["learning_rate"].append(lr)
        cur["grad_norm"].append(gn.item())
        if s % EVAL_EVERY == 0 or s == p.steps - 1:
            model.eval()
            ev["step"].append(s)
            ev["val_loss"].append(evaluate(model, val_w))
            ev["test_loss"].append(evaluate(model, test_w))
    run = {
        "id": f"{p.id}-s{seed}",
        "plan": p.id,
        "planned_kind": p.kind,
        "plan_note": p.note,
        "seed": seed,
        "half": half_of(seed),
        "batch_size": p.batch,
        "train_bytes": len(train_data),
        "steps": p.steps,
        "eval_every": EVAL_EVERY,
        "events": events_of(p),
        "curves": {k: [sig6(v) for v in vs] for k, vs in cur.items()},
        "evals": {"step": ev["step"], **{k: [sig6(v) for v in ev[k]] for k in ("val_loss", "test_loss")}},
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    run["labels"] = label_run(run)
    run["kind"], run["relabel_reason"] = kind_of(run)
    return run


# ── Labels (mirrored by bench/step_corpus_format.ts; tests/step_corpus_labels.test.ts checks they agree) ──


def num(c) -> float:
    if c == "NaN":
        return math.nan
    if c == "Infinity":
        return math.inf
    if c == "-Infinity":
        return -math.inf
    return float(c)


def fin(v: float) -> bool:
    return math.isfinite(v)


def diverged_onset(steps: list[int], test: list[float]) -> int | None:
    for i in range(len(test)):
        before = [v for v in test[:i] if fin(v)]
        if not before:
            if not fin(test[i]) and all(not fin(v) for v in test[i:]):
                return steps[i]
            continue
        best = min(before)
        if (not fin(test[i]) or test[i] >= DIVERGE_FACTOR * best) and all(
            not fin(v) or v >= DIVERGE_STAYS * best for v in test[i + 1 :]
        ):
            return steps[i]
    return None


def label_run(run: dict) -> dict:
    steps = run["evals"]["step"]
    test = [num(c) for c in run["evals"]["test_loss"]]
    train_loss = [num(c) for c in run["curves"]["train_loss"]]
    nan_step = next((s for s, v in enumerate(train_loss) if not fin(v)), None)
    finite = [(v, s) for v, s in zip(test, steps) if fin(v)]
    best, best_step = min(finite, key=lambda x: (x[0], x[1])) if finite else (None, None)
    onset = diverged_onset(steps, test)
    spikes = []
    for a, b in run["events"]["spikes"]:
        pre = [v for s, v in zip(steps, test) if s < a]
        after = [v for s, v in zip(steps, test) if s > b][:SPIKE_RECOVERY_EVALS]
        ok = bool(pre) and fin(pre[-1]) and any(fin(v) and v <= (1 + SPIKE_RECOVERY) * pre[-1] for v in after)
        spikes.append({"from": a, "to": b, "recovered": ok and (onset is None or onset > b)})
    overfit = (
        onset is None
        and best is not None
        and best_step < steps[-1]
        and fin(test[-1])
        and test[-1] >= OVERFIT_RISE * best
    )
    first = next((v for v in test if fin(v)), None)
    stalled = onset is None and first is not None and (first - best) < STALL_GAIN * abs(first)
    return {
        "nan_step": nan_step,
        "held_out_best_step": best_step,
        "held_out_best": sig6(best) if best is not None else None,
        "diverged_onset_step": onset,
        "spikes": spikes,
        "overfit": overfit,
        "stalled": stalled,
    }


def kind_of(run: dict) -> tuple[str, str | None]:
    lab, ev, planned = run["labels"], run["events"], run["planned_kind"]
    if lab["diverged_onset_step"] is not None:
        kind = "nan" if lab["nan_step"] is not None else "diverged"
    elif lab["overfit"]:
        kind = "overfit"
    elif lab["stalled"]:
        kind = "stalled"
    elif ev["spikes"]:
        kind = "spike"
    elif ev["slowdowns"]:
        kind = "slowdown"
    elif planned == "noisy":
        kind = "noisy"
    else:
        kind = "healthy"
    if kind == planned:
        return kind, None
    return kind, relabel_reason(run, kind)


def relabel_reason(run: dict, kind: str) -> str:
    lab = run["labels"]
    test = [num(c) for c in run["evals"]["test_loss"]]
    fins = [v for v in test if fin(v)]
    desc = f"held-out loss first {fins[0]:.3g}, best {min(fins):.3g} at step {lab['held_out_best_step']}, last {test[-1]:.3g}" if fins else "held-out loss never finite"
    if kind == "nan":
        return f"planned {run['planned_kind']}, but train_loss went non-finite at step {lab['nan_step']} and the held-out loss diverged from step {lab['diverged_onset_step']}"
    if kind == "diverged":
        return f"planned {run['planned_kind']}, but the held-out loss diverged from step {lab['diverged_onset_step']} ({desc})"
    return f"planned {run['planned_kind']}, the held-out loss shows {kind}: {desc}"


# ── Main ──


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated plan ids or run ids (plan-sSEED)")
    ap.add_argument("--out", default=CORPUS_PATH)
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    only = [x for x in a.only.split(",") if x]
    jobs = [(p, s) for p in PLANS for s in TUNE_SEEDS + REPORT_SEEDS]
    jobs = [(p, s) for p, s in jobs if not only or any(o in (p.id, f"{p.id}-s{s}") for o in only)]
    _, sha = load_text()
    started = time.perf_counter()
    cpu0 = time.process_time()
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            runs = list(ex.map(train, [p for p, _ in jobs], [s for _, s in jobs]))
    else:
        runs = [train(p, s) for p, s in jobs]
    for r in runs:
        lab = r["labels"]
        print(
            f"{r['id']:24s} {r['kind']:9s} best@{lab['held_out_best_step']} {lab['held_out_best']} onset={lab['diverged_onset_step']} "
            f"nan={lab['nan_step']} spikes={[s['recovered'] for s in lab['spikes']]} {r['build_seconds']}s"
            + (f"  RELABELLED: {r['relabel_reason']}" if r["relabel_reason"] else ""),
            file=sys.stderr,
        )
    corpus = {
        "about": "Step-level judgement corpus: real PyTorch trainings of a byte-level transformer on Python stdlib source, "
        "every step logged, val_loss and a held-out test_loss every 50 steps. Built by bench/step_corpus.py; "
        "labels from test_loss alone (see definitions).",
        "built_with": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "stdlib_files": STDLIB_FILES,
            "text_sha256": sha,
            "model": f"byte-level decoder-only transformer: {LAYERS} blocks, width {WIDTH}, {HEADS} heads, context {CONTEXT}, AdamW (weight decay 0.01), {WARMUP} warm-up steps, grad clip {CLIP}",
            "build_wall_seconds": round(time.perf_counter() - started, 1),
            "build_cpu_seconds_main": round(time.process_time() - cpu0, 1),
            "jobs": a.jobs,
        },
        "thresholds": {
            "diverge_factor": DIVERGE_FACTOR,
            "diverge_stays": DIVERGE_STAYS,
            "spike_recovery": SPIKE_RECOVERY,
            "spike_recovery_evals": SPIKE_RECOVERY_EVALS,
            "overfit_rise": OVERFIT_RISE,
            "stall_gain": STALL_GAIN,
            "report_seeds_from": REPORT_SEEDS_FROM,
        },
        "definitions": DEFINITIONS,
        "plans": [{"id": p.id, "planned_kind": p.kind, "note": p.note} for p in PLANS],
        "runs": runs,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(corpus, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(runs)} runs to {a.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
