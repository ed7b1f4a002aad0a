"""Deterministic checks on a training script before it is sent to paid hardware."""

from __future__ import annotations

import re

from ml_intern.tools.hf_common import CPU_FLAVORS, parse_timeout_hours

_TRAINER_MARKERS = re.compile(
    r"\b(Trainer|TrainingArguments|Seq2SeqTrainingArguments|SFTConfig|SFTTrainer|DPOConfig|DPOTrainer|"
    r"GRPOConfig|GRPOTrainer|ORPOConfig|KTOConfig|RewardConfig|PPOConfig)\b"
)
_PUSH_ENABLED = re.compile(r"push_to_hub\s*=\s*True|\.push_to_hub\s*\(|--push_to_hub\b")
_HUB_MODEL_ID = re.compile(r"hub_model_id\s*=|--hub_model_id\b")
_FLASH_ATTN_INSTALL = re.compile(r"(pip|uv)\s+(pip\s+)?install[^\n]*flash[-_]attn")
_FLASH_ATTN_DEP = re.compile(r"^flash[-_]attn\b", re.IGNORECASE)
_LARGE_MODEL = re.compile(r"\b(\d{1,3}(?:\.\d)?)\s*[bB]\b")


def check_training_script(
    script: str | None,
    *,
    hardware: str = "cpu-basic",
    timeout: object = None,
    dependencies: list[str] | None = None,
    script_args: list[str] | None = None,
) -> list[str]:
    """Return warnings about a job's script: unsaved results, a timeout too short, flash-attn builds."""
    text = "\n".join([script or "", " ".join(script_args or [])])
    deps = [d.strip() for d in dependencies or []]
    warnings: list[str] = []
    uses_trainer = bool(_TRAINER_MARKERS.search(text))

    if uses_trainer and not _PUSH_ENABLED.search(text):
        warnings.append(
            "The script trains but never pushes: job storage is ephemeral, so the model is lost when the job ends. "
            "Set push_to_hub=True and hub_model_id in the config (and pass secrets with HF_TOKEN)."
        )
    elif uses_trainer and not _HUB_MODEL_ID.search(text):
        warnings.append(
            "push_to_hub is on but no hub_model_id is set; the repo name will be derived from output_dir."
        )

    hours = parse_timeout_hours(timeout)
    on_gpu = hardware not in CPU_FLAVORS
    if hours is not None and uses_trainer:
        size = _largest_model_billions(text)
        needed = 1.0 if on_gpu else 2.0
        if size is not None and size >= 7:
            needed = 2.0
        if hours < needed:
            shown = "the default 30m" if timeout in (None, "") else f"{timeout}"
            about = f" for a ~{size:g}B model" if size else ""
            warnings.append(
                f"Timeout {shown} is likely too short for training{about} on {hardware}; "
                f"the job is killed at the limit. Use at least {needed:g}h (e.g. timeout='{int(needed)}h')."
            )

    if _FLASH_ATTN_INSTALL.search(text) or any(_FLASH_ATTN_DEP.match(d) for d in deps):
        warnings.append(
            "Installing flash-attn compiles for a long time (often > 30 min). Use a prebuilt kernel from the Hub "
            "instead: add the `kernels` dependency and set attn_implementation='kernels-community/flash-attn'."
        )
    gpu_unused = not any(marker in text for marker in ("torch.cuda", "device_map", ".to(", ".cuda("))
    if on_gpu and script and not uses_trainer and "import torch" in text and gpu_unused:
        warnings.append(f"The script imports torch but never moves work to the GPU ({hardware} would idle).")
    return warnings


def _largest_model_billions(text: str) -> float | None:
    sizes = [float(m.group(1)) for m in _LARGE_MODEL.finditer(text)]
    sizes = [s for s in sizes if 0.05 <= s <= 1000]
    return max(sizes) if sizes else None
