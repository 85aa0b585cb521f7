"""`studio generate` with thread-CPU and wall spans around studio's own steps, and the collector's CPU.

No profiler (cProfile triples an import's cost): each function named in SPANS
("module:function" or "module:Class.method", space-separated) is wrapped to sum
its thread CPU and wall time; engine events are stamped on a timeline; the
cyclic collector's passes are timed through gc.callbacks. Thread CPU is what a
loaded machine disturbs least.

    SPANS="studio.engine.pipelines:PipelineCache.clear studio.models.loading:_tokenizers" \
    SPANS_OUT=/tmp/spans.txt PYTHONPATH=. python bench/e2e_spans.py generate "a lighthouse" --model M ... --quiet
"""
import importlib, os, resource, sys, threading, time
from collections import defaultdict
T0 = time.perf_counter()
import gc
GC = [0.0, 0, 0.0]
_gc_start = {}
def _gc_cb(phase, info):
    if phase == "start":
        _gc_start[threading.get_ident()] = time.thread_time()
    else:
        d = time.thread_time() - _gc_start.pop(threading.get_ident(), time.thread_time())
        GC[0] += d; GC[1] += 1
        if info["generation"] == 2: GC[2] += d
gc.callbacks.append(_gc_cb)
spans = defaultdict(lambda: [0, 0.0, 0.0])
marks = []
def wrap(modname, qual):
    mod = importlib.import_module(modname)
    owner, name = mod, qual
    if "." in qual:
        cls, name = qual.split(".")
        owner = getattr(mod, cls)
    fn = getattr(owner, name)
    def wrapper(*a, **k):
        c, w = time.thread_time(), time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            s = spans[f"{modname.split('.')[-1]}.{qual}"]
            s[0] += 1; s[1] += time.thread_time() - c; s[2] += time.perf_counter() - w
    setattr(owner, name, wrapper)
TARGETS = os.environ.get("SPANS", "").split()
for t in TARGETS:
    m, q = t.split(":")
    wrap(m, q)
import studio.engine.worker as w
orig_emit = w.LocalEngine._emit
def emit(self, event):
    marks.append((time.perf_counter() - T0, time.process_time(), type(event).__name__))
    orig_emit(self, event)
w.LocalEngine._emit = emit
from studio.cli import main
rc = main(sys.argv[1:])
MAIN_CPU = time.thread_time()
marks.append((time.perf_counter() - T0, time.process_time(), "exit"))
with open(os.environ.get("SPANS_OUT", "/tmp/e2e-spans.txt"), "w") as f:
    for t, c, what in marks:
        f.write(f"{t:7.3f} wall {c:7.3f} cpu  {what}\n")
    for k, (n, c, wl) in sorted(spans.items(), key=lambda x: -x[1][1]):
        f.write(f"{k:45} n={n:3} cpu {c:6.3f} wall {wl:6.3f}\n")
    f.write(f"gc cpu {GC[0]:.3f} in {GC[1]} collections, full ones {GC[2]:.3f}; main thread cpu {MAIN_CPU:.3f}\n")
    u = resource.getrusage(resource.RUSAGE_SELF)
    f.write(f"total cpu {u.ru_utime + u.ru_stime:.2f}\n")
