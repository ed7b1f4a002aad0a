"""Training-script preflight warnings used by the hf_jobs approval preview."""

from ml_intern.tools.preflight import check_training_script

TRAINER = """
from transformers import Trainer, TrainingArguments
args = TrainingArguments(output_dir="out")
Trainer(model=model, args=args).train()
"""


def test_missing_push_to_hub_is_flagged():
    warnings = check_training_script(TRAINER, hardware="a10g-small", timeout="2h")
    assert len(warnings) == 1 and "never pushes" in warnings[0]


def test_pushing_script_with_enough_time_is_clean():
    script = TRAINER.replace('output_dir="out"', 'output_dir="out", push_to_hub=True, hub_model_id="me/m"')
    assert check_training_script(script, hardware="a10g-small", timeout="2h") == []


def test_default_timeout_too_short_for_gpu_training():
    script = TRAINER.replace('output_dir="out"', 'push_to_hub=True, hub_model_id="me/m"')
    warnings = check_training_script(script, hardware="a100-large", timeout=None)
    assert any("default 30m" in w and "too short" in w for w in warnings)
    big = script + "\nmodel_id = 'meta-llama/Llama-3.1-8B'\n"
    warnings = check_training_script(big, hardware="a100-large", timeout="90m")
    assert any("8B" in w and "2h" in w for w in warnings)


def test_flash_attn_install_suggests_kernels():
    assert any("kernels" in w for w in check_training_script("import os", dependencies=["flash-attn==2.7"]))
    script = "import subprocess\nsubprocess.run('pip install flash-attn --no-build-isolation', shell=True)\n"
    assert any("kernels" in w for w in check_training_script(script))


def test_plain_script_has_no_warnings():
    assert check_training_script("print('hello')", hardware="cpu-basic", timeout="5m") == []
