"""What `studio generate` does not pay for: work done twice, or done where nothing needs it."""

from __future__ import annotations

from pathlib import Path

from studio.engine import pipelines
from studio.engine.pipelines import PipelineCache
from studio.models.resolve import ModelRef
from studio.recipe import Recipe


class _Pipe:
    scheduler = type("S", (), {"config": {}})()


def _cache_with(device: str) -> PipelineCache:
    cache = PipelineCache(lambda ref, device, dtype, recipe: _Pipe())
    ref = ModelRef("m", Path("m"), "single_file", "")
    cache.get(("m", device, "float32"), ref, Recipe(prompt="x"), device, "float32")
    return cache


def test_shutdown_collects_only_for_accelerator_memory(monkeypatch) -> None:
    freed: list[str] = []
    monkeypatch.setattr(pipelines, "free_accelerator_memory", lambda: freed.append("freed"))
    cpu = _cache_with("cpu")
    cpu.clear()
    assert freed == [] and "m" not in [key[0] for key in cpu._entries]  # a CPU pipeline: no gc pass at exit
    cuda = _cache_with("cuda:0")
    cuda.clear()
    assert freed == ["freed"] and not cuda._entries  # CUDA memory is still handed back


def test_a_header_is_read_once_while_the_file_is_unchanged(tmp_path) -> None:
    import os

    from studio.models import safetensors_header as sh
    from tests.models_fixtures import sd1_spec, write_header_only

    path = write_header_only(tmp_path / "model.safetensors", sd1_spec())
    sh.HEADERS.clear()
    before = sh.HEADERS.computed
    first = sh.read_header(path)
    first.tensors.clear()  # a caller's copy: what the next caller gets is whole
    second = sh.read_header(path)
    assert sh.HEADERS.computed == before + 1 and second.tensors and second == sh._read_header(path, sh.MAX_HEADER_BYTES)
    stat = path.stat()
    write_header_only(path, {"only": ("F16", (4,))})  # the same file, rewritten
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert list(sh.read_header(path).tensors) == ["only"] and sh.HEADERS.computed == before + 2


def test_a_missing_or_damaged_header_is_still_one_line(tmp_path) -> None:
    import pytest

    from studio.models.safetensors_header import HeaderError, read_header

    with pytest.raises(HeaderError, match="cannot read"):
        read_header(tmp_path / "gone.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 8)
    for _ in range(2):  # a failure is not kept: it says so every time
        with pytest.raises(HeaderError, match="over the"):
            read_header(tmp_path / "bad.safetensors")


def test_a_generate_reads_its_checkpoint_header_once_before_queueing(tmp_path) -> None:
    """`studio generate` asks for the defaults, the sampler check and the companions of one file."""
    from studio.cli import generate
    from studio.config import Config
    from studio.models import safetensors_header as sh
    from studio.models.library import ModelLibrary
    from tests.models_fixtures import sd1_spec, write_header_only

    path = write_header_only(tmp_path / "model.safetensors", sd1_spec())
    parser = __import__("argparse").ArgumentParser()
    generate.add_arguments(parser)
    args = parser.parse_args(["a fox", "--model", str(path), "--seed", "1"])
    sh.HEADERS.clear()
    before = sh.HEADERS.computed
    recipes = generate.recipes_from_args(args, ModelLibrary(use_hf_cache=False), Config())
    assert recipes[0].model == str(path)
    assert sh.HEADERS.computed == before + 1


def test_generate_parses_its_line_without_importing_the_other_commands() -> None:
    import subprocess
    import sys

    code = ("import sys; from studio import cli; cli.build_parser('generate').parse_args(['generate', 'x']); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('studio.cli.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env())
    loaded = set(done.stdout.split())
    assert "studio.cli.generate" in loaded, done.stderr[-2000:]
    others = {f"studio.cli.{name}" for name in ("sweep", "search", "sheet", "export", "upscale", "tui", "sessions")}
    assert not loaded & others


def test_every_command_is_still_listed_and_parsed(capsys) -> None:
    import pytest

    from studio.cli import COMMANDS, build_parser, main

    with pytest.raises(SystemExit):
        main(["-h"])
    listing = capsys.readouterr().out
    assert all(name in listing for name, _, _ in COMMANDS)
    assert build_parser("search").parse_args(["search", "fox"]).command == "search"
    with pytest.raises(SystemExit) as exit_:
        main(["nosuchcommand"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_generate_starts_the_heavy_imports_before_its_line_is_parsed(monkeypatch) -> None:
    import studio.cli as cli
    from studio.engine import warmup

    order: list[str] = []
    build = cli.build_parser
    monkeypatch.setattr(warmup, "import_in_background", lambda: order.append("imports"))
    monkeypatch.setattr(cli, "build_parser", lambda command=None: (order.append(f"parser {command}"), build(command))[1])
    monkeypatch.setattr("studio.cli.generate.run", lambda args: order.append("run") or 0)
    assert cli.main(["generate", "a fox", "--seed", "1"]) == 0
    assert order == ["imports", "parser generate", "run"]
    order.clear()
    import pytest

    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])  # help only: nothing heavy is started
    assert "imports" not in order


def _env() -> dict:
    import os
    from pathlib import Path

    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def test_the_cli_import_runs_without_the_collector_and_freezes_what_it_made(monkeypatch) -> None:
    import gc

    from studio.engine import warmup

    seen: list[bool] = []

    def imports() -> None:
        seen.append(gc.isenabled())
        warmup.kept = [[object()] for _ in range(1000)]  # as modules do: objects that live on

    monkeypatch.setattr(warmup, "import_libraries", imports)
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        warmup._quietly()
        assert seen == [False]  # no collector pass over the import
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + 1000  # and none after it scans it
    finally:
        gc.unfreeze()
        del warmup.kept
