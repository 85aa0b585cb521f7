"""Pickled weights are refused; even when allowed, a payload that runs code never runs."""

from __future__ import annotations

import pickle

import pytest

from studio.cli import main
from studio.models.inspect import inspect_file
from studio.models.pickles import PickleRefused, load_pickle_state_dict


class _CreatesFile:
    """Unpickling this calls open(target, "w"): the file appearing means code ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def _evil_files(tmp_path):
    import torch

    target = tmp_path / "pwned.txt"
    raw = tmp_path / "evil.ckpt"
    raw.write_bytes(pickle.dumps({"state_dict": _CreatesFile(target)}))
    zipped = tmp_path / "evil.pt"
    torch.save({"weight": _CreatesFile(target)}, zipped)
    assert not target.exists()
    return target, [raw, zipped]


@pytest.mark.parametrize("allow", [False, True])
def test_inspect_refuses_code_in_pickles(tmp_path, capsys, allow):
    target, files = _evil_files(tmp_path)
    for path in files:
        with pytest.raises(PickleRefused):
            inspect_file(path, allow_pickle=allow)
        argv = ["inspect", str(path)] + (["--allow-pickle"] if allow else [])
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert ("not plain weights" if allow else "--allow-pickle") in err
        _says_what_studio_says(err)
    assert not target.exists()


def _says_what_studio_says(message: str) -> None:
    """Studio's words only: torch's own refusal advises turning its restricted unpickler off."""
    assert "weights_only=False" not in message and "weights_only" not in message
    assert "torch.load" not in message and "Re-running" not in message and "add_safe_globals" not in message
    assert "pickle" in message


def test_refusal_says_pickle_refused_and_what_allow_pickle_does(tmp_path, capsys):
    target, (raw, zipped) = _evil_files(tmp_path)
    with pytest.raises(PickleRefused) as refused:
        load_pickle_state_dict(zipped, allow_pickle=False)
    text = str(refused.value)
    assert "is a pickle" in text and "studio refuses pickles" in text
    assert "--allow-pickle loads it with torch's restricted weights-only unpickler" in text
    _says_what_studio_says(text)
    for path in (raw, zipped):
        with pytest.raises(PickleRefused) as refused:
            load_pickle_state_dict(path, allow_pickle=True)
        _says_what_studio_says(str(refused.value))
        assert "\n" not in str(refused.value)
    assert "(io.open)" in str(refused.value)  # what the payload asked for, in studio's words
    assert not target.exists()


def test_plain_pickled_weights_load_only_when_allowed(tmp_path):
    import torch

    path = tmp_path / "emb.pt"
    torch.save({"string_to_param": {"*": torch.zeros(2, 768)}, "name": "x"}, path)
    with pytest.raises(PickleRefused, match="refuses"):
        load_pickle_state_dict(path, allow_pickle=False)
    state = load_pickle_state_dict(path, allow_pickle=True)
    assert list(state) == ["string_to_param.*"]
    result = inspect_file(path, allow_pickle=True)
    assert (result.kind, result.architecture, result.format) == ("embedding", "SD1.x textual inversion", "pickle")


@pytest.mark.parametrize("allow", [False, True])
def test_generate_refuses_code_in_pickles(tmp_path, capsys, allow):
    pytest.importorskip("studio.cli.generate")
    target, files = _evil_files(tmp_path)
    for path in files:
        argv = ["generate", "a cat", "--model", str(path), "--size", "64x64", "--steps", "1", "--quiet",
                "--out", str(tmp_path / "out"), "--sessions-dir", str(tmp_path / "sessions")]
        assert main(argv + (["--allow-pickle"] if allow else [])) != 0
        err = capsys.readouterr().err
        # Allowed, the file is read with weights_only=True, which refuses the payload.
        assert ("not plain weights" if allow else "refuses pickles") in err
        _says_what_studio_says(err)
    assert not target.exists()
    assert not list(tmp_path.rglob("*.png"))
