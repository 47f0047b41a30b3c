"""The ONNX files behind the `onnx-*` embedding backends: exported once, then read from disk.

One export serves every ONNX backend: the transformer is exported with torch (eager attention,
so that ONNX Runtime's transformer optimizer can fuse it), then fused by
`onnxruntime.transformers.optimizer` (one `Attention` op per layer, `SkipLayerNormalization`,
`BiasGelu`, `EmbedLayerNormalization`) and kept as `model.fp32.onnx`. The quantised backends are
made from that file by ONNX Runtime's `quantize_dynamic` (int8 weights, per channel):

- `onnx-fp32`: the fused float32 graph (the same vectors as torch float32, 1 - cos < 1e-6);
- `onnx-int8`: every MatMul and the attention projections in int8.

No partly quantised file is shipped: `benchmarks/consensus_backends.py --sensitivity` quantised
each group of layers alone, and each group alone moves the medoid of float32 in 0.7% (attention
output, 8% of the FLOPs) to 5.5% (FFN out) of sets of three (see its docstring).

Each file is written under a name of its own (`.<pid>.partial`) and renamed when complete, so
two processes exporting at once or a crash never leave half a model that a later process would
load. Exporting needs torch, sentence-transformers and onnx; running the result needs only
onnxruntime and tokenizers.

    model_file, made = exported_model(model_dir, folder, "onnx-fp32")   # made: files written now
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

EXPORT_VERSION = 2
"""Part of the cache folder's key: bump it when the exported graphs change."""

MODEL_FILES = {"onnx-fp32": "model.fp32.onnx", "onnx-int8": "model.int8.onnx"}


def exported_model(path: str, folder: Path, backend: str) -> tuple[Path, list[str]]:
    """The ONNX file of `backend` for the model at `path`, and the names of the files this call
    had to make (empty when everything was on disk already)."""
    target = folder / MODEL_FILES[backend]
    made: list[str] = []
    fp32 = folder / MODEL_FILES["onnx-fp32"]
    if not fp32.is_file():
        _export_fp32(path, fp32)
        made.append(fp32.name)
    if not target.is_file():
        quantise(fp32, target)
        made.append(target.name)
    return target, made


def _partial(target: Path) -> Path:
    return target.with_name(f"{target.name}.{os.getpid()}.partial")


def _export_fp32(path: str, target: Path) -> None:
    """Export the transformer with torch, then fuse it with ONNX Runtime's transformer optimizer."""
    import torch
    from onnxruntime.transformers import optimizer
    from sentence_transformers import SentenceTransformer

    module: Any = SentenceTransformer(path, device="cpu")[0]  # its Transformer module (untyped)
    transformer = module.auto_model.eval()
    # SDPA exports a graph the optimizer cannot fuse; older transformers only have the config field
    if hasattr(transformer, "set_attn_implementation"):
        transformer.set_attn_implementation("eager")
    else:
        transformer.config._attn_implementation = "eager"

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            output = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return output.last_hidden_state

    sample = torch.ones((2, 16), dtype=torch.long)
    plain = _partial(target.with_name("model.plain.onnx"))
    names = ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")
    with torch.inference_mode(), warnings.catch_warnings():
        # the tracer warns about transformers' mask code; the test suite checks the exported
        # graph against torch float32 on padded and unpadded answers
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Encoder(),
            (sample, sample, torch.zeros_like(sample)),
            str(plain),
            input_names=list(names[:3]),
            output_names=[names[3]],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names},
            opset_version=17,
            dynamo=False,
        )
    config = transformer.config
    fused = optimizer.optimize_model(
        str(plain),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,  # fusions only; the session applies ORT_ENABLE_ALL when it loads the file
    )
    partial = _partial(target)
    fused.save_model_to_file(str(partial))
    partial.rename(target)
    plain.unlink(missing_ok=True)


def quantise(source: Path, target: Path, nodes: list[str] | None = None) -> None:
    """Dynamic int8 quantisation (per channel) of `nodes`; of every MatMul and attention when None."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = _partial(target)
    quantize_dynamic(
        str(source),
        str(partial),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_quantize=nodes,
        # the fused ops are in the com.microsoft domain, which shape inference does not type
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    partial.rename(target)
