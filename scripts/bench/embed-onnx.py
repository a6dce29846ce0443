"""The embed suite's set-up: all-MiniLM-L6-v2 as an ONNX graph for onnxruntime-web, built
from the same safetensors the embedder loads (models/all-minilm-l6-v2/model.safetensors),
and the suite's texts: the code and long texts of a minilm-reference set cut into chunks
of exactly 128 tokens ([CLS] and [SEP] included), with their token ids.

The graph is BERT as the Hugging Face port computes it (fp32, opset 17: LayerNormalization,
erf GELU, additive attention mask) followed by the sentence-transformers head (mean over
the attention mask, L2 normalisation), so both engines answer unit vectors from the same
token ids. Run by scripts/bench/embed-run.js in a venv holding `onnx` and `tokenizers`.

usage: embed-onnx.py MODEL_DIR TEXTS_DIR OUT_DIR  (TEXTS_DIR holds a texts.jsonl)
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

CHUNK_TOKENS = 128


def load_safetensors(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        a, b = entry["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(entry["shape"])
    return out


def build_graph(w, config):
    h = config["hidden_size"]
    heads = config["num_attention_heads"]
    d = h // heads
    eps = config["layer_norm_eps"]
    nodes, inits = [], []
    counter = [0]

    def const(array, name=None):
        counter[0] += 1
        name = name or f"c{counter[0]}"
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, inputs, **attrs):
        counter[0] += 1
        out = f"t{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(x, prefix):
        y = node("MatMul", [x, const(np.ascontiguousarray(w[f"{prefix}.weight"].T))])
        return node("Add", [y, const(w[f"{prefix}.bias"])])

    def norm(x, prefix):
        return node("LayerNormalization", [x, const(w[f"{prefix}.weight"]), const(w[f"{prefix}.bias"])], axis=-1, epsilon=eps)

    heads_shape = const(np.array([0, 0, heads, d], dtype=np.int64))
    hidden_shape = const(np.array([0, 0, h], dtype=np.int64))

    x = node("Gather", [const(w["embeddings.word_embeddings.weight"]), "input_ids"])
    length = node("Gather", [node("Shape", ["input_ids"]), const(np.array(1, dtype=np.int64))])
    positions = node("Range", [const(np.array(0, dtype=np.int64)), length, const(np.array(1, dtype=np.int64))])
    x = node("Add", [x, node("Gather", [const(w["embeddings.position_embeddings.weight"]), positions])])
    x = node("Add", [x, const(w["embeddings.token_type_embeddings.weight"][0])])
    x = norm(x, "embeddings.LayerNorm")

    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [const(np.array(1, dtype=np.float32)), mask]), const(np.array(-10000, dtype=np.float32))])
    bias = node("Unsqueeze", [bias, const(np.array([1, 2], dtype=np.int64))])
    scale = const(np.array(1 / np.sqrt(d), dtype=np.float32))

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        split = lambda t, perm: node("Transpose", [node("Reshape", [t, heads_shape])], perm=perm)
        q = split(linear(x, f"{p}.attention.self.query"), [0, 2, 1, 3])
        k = split(linear(x, f"{p}.attention.self.key"), [0, 2, 3, 1])
        v = split(linear(x, f"{p}.attention.self.value"), [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), bias])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), hidden_shape])
        x = norm(node("Add", [linear(context, f"{p}.attention.output.dense"), x]), f"{p}.attention.output.LayerNorm")
        inner = linear(x, f"{p}.intermediate.dense")
        erf = node("Erf", [node("Mul", [inner, const(np.array(1 / np.sqrt(2), dtype=np.float32))])])
        inner = node("Mul", [node("Mul", [inner, const(np.array(0.5, dtype=np.float32))]), node("Add", [erf, const(np.array(1, dtype=np.float32))])])
        x = norm(node("Add", [linear(inner, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    weights = node("Unsqueeze", [mask, const(np.array([2], dtype=np.int64))])
    axis1 = const(np.array([1], dtype=np.int64))
    summed = node("ReduceSum", [node("Mul", [x, weights]), axis1], keepdims=0)
    mean = node("Div", [summed, node("ReduceSum", [weights, axis1], keepdims=0)])
    length2 = node("ReduceSum", [node("Mul", [mean, mean]), axis1], keepdims=1)
    nodes.append(helper.make_node("Div", [mean, node("Max", [node("Sqrt", [length2]), const(np.array(1e-12, dtype=np.float32))])], ["embedding"]))

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", h])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="quiver bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def chunks(tokenizer, texts_dir):
    """Word runs of the set's code and long texts that tokenise to exactly 128 tokens."""
    out = []
    for line in (Path(texts_dir) / "texts.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["kind"] not in ("code", "long"):
            continue
        words = row["text"].split(" ")
        start = 0
        while start < len(words):
            end = start
            ids = None
            while end < len(words):
                candidate = tokenizer.encode(" ".join(words[start : end + 1])).ids
                if len(candidate) > CHUNK_TOKENS:
                    break
                end, ids = end + 1, candidate
            if ids is None:
                start += 1
                continue
            if len(ids) == CHUNK_TOKENS:
                out.append({"text": " ".join(words[start:end]), "ids": ids})
            start = end
    return out


def main():
    model_dir, texts_dir, out_dir = map(Path, sys.argv[1:4])
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((model_dir / "config.json").read_text())
    onnx.save(build_graph(load_safetensors(model_dir / "model.safetensors"), config), out_dir / "minilm.onnx")
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    found = chunks(tokenizer, texts_dir)
    (out_dir / "embed-chunks.json").write_text(json.dumps(found))
    print(f"wrote {out_dir / 'minilm.onnx'} and {len(found)} chunks of {CHUNK_TOKENS} tokens")


main()
