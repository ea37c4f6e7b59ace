"""The ``univlg`` command line itself: every listed command exists, and building it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from univlg.cli import COMMANDS, build_parser, main


def test_every_listed_command_has_a_module_and_help():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # the registered subcommands
    assert sorted(choices) == sorted(COMMANDS)
    assert all(choices[name].description for name in COMMANDS)


def test_building_the_command_line_does_not_import_torch():
    script = (
        "import sys; from univlg.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'numpy', 'transformers', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_bad_device_and_preset_overrides_are_one_line_errors(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("model_preset: tiny\n")
    assert main(["train", "--config", str(config), "--set", "model_preset=paper"]) == 2
    assert "put 'model_preset: NAME' in" in capsys.readouterr().err
    assert main(["ground", "a chair", "--checkpoint", str(tmp_path), "--scene", str(tmp_path), "--device", "tpu"]) == 2
    assert "device 'tpu': expected auto" in capsys.readouterr().err


def test_train_overrides_are_collected_from_one_or_several_set_flags():
    from univlg.cli import build_parser

    parser = build_parser()
    several = parser.parse_args(["train", "--config", "c.yaml", "--set", "steps=5", "--set", "optim.lr=0.1"])
    one = parser.parse_args(["train", "--config", "c.yaml", "--set", "steps=5", "optim.lr=0.1", "--resume"])
    assert several.overrides == one.overrides == ["steps=5", "optim.lr=0.1"] and one.resume


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_without_cuda_is_a_config_error():
    from univlg.device import resolve_device
    from univlg.errors import ConfigError

    assert resolve_device("auto").type == "cpu" and resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
