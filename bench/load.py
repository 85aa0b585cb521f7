"""Loading a full-size SD1.5 near the disk: studio against a bare diffusers script, interleaved.

Builds (once, in `--cache`) the random-weight SD1.5 of `bench/sd15_fixture.py`:
860 M UNet parameters in fp16, 2.1 GB, as a diffusers folder and as a single
file, with a real-format CLIP BPE. Then, each measurement a fresh Python
process, alternating studio and bare in every round so machine noise hits both:

- read: reading the weight bytes (warm page cache), the floor;
- import: `import torch` + diffusers' and transformers' SD classes;
- load: import + a ready pipeline on the CPU in float32 (studio: a fresh
  process builds a `LocalEngine` and preloads the model, timed to its Loaded
  event, with the time the worker's imports were done; the hash cache starts
  empty, so a new file's hash is paid; bare: `from_pretrained` /
  `from_single_file`), folder and single file;
- e2e: `studio generate` at 128x128, 4 steps, default threads, against a bare
  script doing the same (import, load, 4 steps, write a PNG).

Goals: e2e ≤ 1.05× bare; load ≤ 1.5× (read + import). With `--cold` the page
cache is dropped before every run (as root with a writable
/proc/sys/vm/drop_caches; else only the weight files, with posix_fadvise). `--profile` prints
where studio's load spends its time (cProfile, cumulative, top 25).

    python bench/load.py [--rounds 3] [--cache /tmp/studio-bench-cache] [--skip-e2e | --skip-load] [--cold]
                         [--profile single] [--before OTHER_CHECKOUT] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sd15_fixture import DEFAULT_CACHE, build  # noqa: E402

CONFIG = ROOT / "studio" / "models" / "configs" / "sd1"

READ = """
import sys, time, pathlib
t = time.perf_counter()
for p in sys.argv[1:]:
    with open(p, "rb", buffering=0) as f:
        while f.read(64 << 20): pass
print({"total": time.perf_counter() - t})
"""

IMPORT = """
import time
t = time.perf_counter()
import torch, diffusers, transformers
diffusers.StableDiffusionPipeline, diffusers.UNet2DConditionModel, diffusers.AutoencoderKL
transformers.CLIPTextModel, transformers.CLIPTokenizer
print({"total": time.perf_counter() - t})
"""

BARE_LOAD = """
import sys, time, json
t = time.perf_counter()
import torch, diffusers, transformers
from diffusers import StableDiffusionPipeline
imported = time.perf_counter()
kind, model, bpe, config = sys.argv[1:5]
if kind == "folder":
    pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32, local_files_only=True,
        safety_checker=None, requires_safety_checker=False)
else:
    tok = transformers.CLIPTokenizer(bpe + "/vocab.json", bpe + "/merges.txt", model_max_length=77)
    pipe = StableDiffusionPipeline.from_single_file(model, config=config, tokenizer=tok, torch_dtype=torch.float32,
        local_files_only=True, safety_checker=None, requires_safety_checker=False)
end = time.perf_counter()
print({"import": imported - t, "load": end - imported, "total": end - t})
"""

STUDIO_LOAD = """
import sys, time, queue
t = time.perf_counter()
from studio.engine import events as ev
from studio.engine.worker import LocalEngine
from studio.models.library import ModelLibrary
from studio.recipe import Recipe
kind, model, bpe, config = sys.argv[1:5]
inbox = queue.Queue()
engine = LocalEngine(inbox.put, library=ModelLibrary(tokenizer_dirs=[bpe]))
engine.preload(Recipe(prompt="x", model=model, device="cpu"))
ready = None
while True:
    event = inbox.get()
    if isinstance(event, ev.Ready):
        ready = time.perf_counter() - t
    elif isinstance(event, ev.Failed):
        raise SystemExit(event.reason)
    elif isinstance(event, ev.Loaded):
        break
end = time.perf_counter()
print({"imports": ready, "resolve+hash+load": event.seconds, "total": end - t}, flush=True)
import os
os._exit(0)  # measured; the worker thread holds the pipeline and need not be unwound
"""

BARE_E2E = """
import sys, time
t = time.perf_counter()
import torch, transformers
from diffusers import StableDiffusionPipeline
model, bpe, config, out = sys.argv[1:5]
tok = transformers.CLIPTokenizer(bpe + "/vocab.json", bpe + "/merges.txt", model_max_length=77)
pipe = StableDiffusionPipeline.from_single_file(model, config=config, tokenizer=tok, torch_dtype=torch.float32,
    local_files_only=True, safety_checker=None, requires_safety_checker=False)
pipe.set_progress_bar_config(disable=True)
image = pipe("a lighthouse", width=128, height=128, num_inference_steps=4,
             generator=torch.Generator("cpu").manual_seed(1)).images[0]
image.save(out)
print({"total": time.perf_counter() - t})
"""


def children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for children so far: on a shared machine, the work done."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child(code: str, *args: str, root: Path = ROOT) -> dict:
    started, cpu = time.perf_counter(), children_cpu()
    fresh = tempfile.mkdtemp(prefix="studio-bench-hashes-")  # a new file: its hash not yet cached
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root), "STUDIO_CACHE_DIR": fresh})
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    result = eval(done.stdout.strip().splitlines()[-1])  # our own dict literal
    result["wall"], result["cpu"] = wall, children_cpu() - cpu
    return result


def studio_generate(model: Path, bpe: Path, out: Path, root: Path = ROOT) -> dict:
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "studio", "generate", "a lighthouse", "--model", str(model), "--tokenizer", str(bpe),
         "--size", "128x128", "--steps", "4", "--seed", "1", "--device", "cpu", "--sampler", "Euler",
         "--sessions-dir", str(out / "sessions"), "--out", str(out), "--quiet"],
        capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
    )
    if done.returncode:
        raise SystemExit(f"studio generate failed:\n{done.stderr[-3000:]}")
    return {"wall": time.perf_counter() - started, "cpu": children_cpu() - cpu}


EVICT: list[Path] = []  # without root: the files posix_fadvise(DONTNEED) drops from the page cache


def drop_caches() -> bool:
    """Drop the page cache: all of it as root, else the fixture's weight files (`EVICT`)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        pass
    if not EVICT or not hasattr(os, "posix_fadvise"):
        return False
    for path in EVICT:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def compile_bytecode(tree: Path) -> None:
    """Byte-compile the studio tree measured, as installing it does: a checkout run with
    PYTHONDONTWRITEBYTECODE=1 (as here) compiled ~130 of its modules from source in every
    studio process (0.3 CPU seconds), which the bare side's installed libraries never pay."""
    import compileall

    compileall.compile_dir(tree / "studio", quiet=1)


def weights(folder: Path) -> list[str]:
    return [str(p) for p in sorted(folder.rglob("*.safetensors"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-load", action="store_true", help="only the end-to-end pairs (more rounds in the time)")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before every run")
    parser.add_argument("--profile", choices=("folder", "single"))
    parser.add_argument("--before", type=Path, help="another checkout of studio, measured as a third side")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="OMP_NUM_THREADS for every side (default: torch's, every core). On a loaded machine"
                        " OpenMP's spin-waiting inflates the CPU seconds of both sides; one thread measures the work")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    where = build(args.cache)
    for tree in {ROOT, *([args.before.resolve()] if args.before else [])}:
        compile_bytecode(tree)
    folder, single, bpe = where["folder"], where["single"], str(where["bpe"])
    config = str(CONFIG)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", file=sys.stderr)
    if args.profile:
        model = str(folder if args.profile == "folder" else single)
        code = "import cProfile, pstats, sys\n" + f"sys.argv = ['x', {args.profile!r}, {model!r}, {bpe!r}, {config!r}]\n"
        code += f"cProfile.run({STUDIO_LOAD!r}, '/tmp/studio-load.prof')\n"
        code += "pstats.Stats('/tmp/studio-load.prof').sort_stats('cumulative').print_stats(25)\n"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return
    EVICT.extend(Path(p) for p in [str(single), *weights(folder)])
    cold = args.cold and drop_caches()
    if args.cold and not cold:
        print("could not drop the page cache (no permission): cold figures not measured", file=sys.stderr)
    elif cold and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        print("cold: the weight files evicted with posix_fadvise(DONTNEED); Python's own files stay cached",
              file=sys.stderr)
    child(READ, str(single))  # warm the page cache once
    child(READ, *weights(folder))
    results: dict[str, list[dict]] = {}
    sides = [("bare", BARE_LOAD, ROOT), ("studio", STUDIO_LOAD, ROOT)]
    if args.before:
        sides.append(("before", STUDIO_LOAD, args.before.resolve()))

    def record(name: str, result: dict) -> None:
        results.setdefault(name, []).append(result)
        print(f"  {name:16} " + "  ".join(f"{k} {v:6.2f}" for k, v in result.items()), file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="studio-bench-load-") as tmp:
        # end to end is the steady state: the model's hash is cached, as after its first use
        os.environ["STUDIO_CACHE_DIR"] = str(Path(tmp) / "cache")
        from studio.models.hashing import HashCache

        HashCache().sha256(single)
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}", file=sys.stderr)
            pairs = () if args.skip_load else (("folder", folder, weights(folder)), ("single", single, [str(single)]))
            for kind, model, files in pairs:
                if cold:
                    drop_caches()
                record(f"read {kind}", child(READ, *files))
                if cold:
                    drop_caches()
                record("import", child(IMPORT))
                for side, code, root in sides[:: 1 if round_ % 2 else -1]:
                    if cold:
                        drop_caches()
                    record(f"{side} {kind}", child(code, kind, str(model), bpe, config, root=root))
            if not args.skip_e2e:
                out = Path(tmp) / f"r{round_}"
                out.mkdir()
                pair = [("bare e2e", lambda: child(BARE_E2E, str(single), bpe, config, str(out / "bare.png"))),
                        ("studio e2e", lambda: studio_generate(single, Path(bpe), out / "now"))]
                if args.before:
                    pair.append(("before e2e", lambda: studio_generate(single, Path(bpe), out / "before", args.before)))
                for name, run in pair[:: 1 if round_ % 2 else -1]:
                    record(name, run())

    def median(name: str, field: str = "total") -> float:
        return statistics.median(r[field] for r in results[name])

    print(f"load average at end {os.getloadavg()[0]:.2f}; {'cold' if cold else 'warm'} page cache; "
          f"medians of {args.rounds} rounds", file=sys.stderr)
    for kind in () if args.skip_load else ("folder", "single"):
        imp = median("import")
        floor = median(f"read {kind}") + imp
        s, b = median(f"studio {kind}"), median(f"bare {kind}")
        print(f"{kind}: read {median(f'read {kind}'):.2f} s + import {imp:.2f} s = floor {floor:.2f} s;"
              f" bare load {b:.2f} s; studio load {s:.2f} s (worker imports done at"
              f" {median(f'studio {kind}', 'imports'):.2f}, then resolve+hash+load"
              f" {median(f'studio {kind}', 'resolve+hash+load'):.2f}); studio/floor {s / floor:.2f} (goal ≤ 1.5),"
              f" studio/bare {s / b:.2f}")
    if not args.skip_e2e:
        s, b = median("studio e2e", "wall"), median("bare e2e", "wall")
        before = f", before this change {median('before e2e', 'wall'):.2f} s" if args.before else ""
        print(f"e2e 128x128 4 steps: bare {b:.2f} s, studio generate {s:.2f} s{before}, ratio {s / b:.2f} (goal ≤ 1.05)")
    cpu = {name: median(name, "cpu") for name in results if name.split()[0] in ("bare", "studio", "before")}
    print("CPU seconds (user+system, the work done whatever the machine's load): "
          + ", ".join(f"{name} {value:.2f}" for name, value in cpu.items()))


if __name__ == "__main__":
    main()
