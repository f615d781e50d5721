"""Using a found model: ``nao export`` (TorchScript, ONNX), ``nao.load``, ``nao predict``, checkpoint data records."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nao
from nao.cli import build_parser, main
from nao.errors import DataError
from nao.train.checkpoint import load_checkpoint, save_checkpoint

# torch 2.13 deprecates TorchScript; these tests read exports back with torch.jit.load on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "eel": (30, 30, 200)}
TINY_TRAIN = ["--arch", "naonet-ws", "--dataset", "folder", "--image-size", "8", "--channels", "4", "--layers", "1",
              "--epochs", "2", "--batch-size", "8", "--threads", "1"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _image(colour, size, seed, mode="RGB") -> Image.Image:
    """A noisy solid-colour image (noise so that the classes are not trivially separable by one pixel)."""
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = np.clip(np.array(colour)[None, None] + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _folder(root: Path, per_class=10, classes=COLOURS) -> Path:
    """Image-folder tree of mixed sizes, modes (grey, RGBA, palette) and formats."""
    for c, colour in classes.items():
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            size = ((8, 8), (13, 9), (40, 33))[i % 3]
            mode = ("RGB", "RGBA", "P", "L")[i % 4] if c != "eel" else "RGB"
            suffix = ".jpg" if i % 5 == 4 else ".png"
            img = _image(colour, size, seed=hash((c, i)) % 1000, mode=mode)
            (img.convert("RGB") if suffix == ".jpg" else img).save(root / c / f"{i}{suffix}")
    return root


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """``nao train --dataset folder``: a tiny classifier of three colour classes (and its folder)."""
    base = tmp_path_factory.mktemp("folder-run")
    data, out = _folder(base / "pets"), base / "run"
    assert main(["-q", "train", *TINY_TRAIN, "--data-dir", str(data), "--out", str(out)]) == 0
    return out, data


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    """The smoke NAO-WS search on digits: a run directory with a final training."""
    out = tmp_path_factory.mktemp("search") / "run"
    assert main(["search", "--preset", "smoke", "--strategy", "random", "--seed", "1", "--out", str(out), "-q"]) == 0
    return out


# -- export ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, name", [("torchscript", "model.pt"), ("onnx", "model.onnx")])
def test_export_round_trip_matches_pytorch_at_any_batch_size(search_run, tmp_path, capsys, fmt, name):
    out = tmp_path / "exp" / name
    assert main(["export", str(search_run), "--format", fmt, "--out", str(out)]) == 0
    assert "max |difference|" in capsys.readouterr().out
    info = json.loads((out.parent / (name + ".json")).read_text())
    result = json.loads((search_run / "result.json").read_text())
    assert info["format"] == fmt and info["arch"] == result["winner"] and info["image_size"] == 8
    assert info["class_names"] == [str(i) for i in range(10)] and len(info["mean"]) == 3 == len(info["std"])
    assert info["accuracy"]["test_acc"] == pytest.approx(result["final"]["test_acc"])
    assert info["check"]["max_abs_diff"] <= info["check"]["tolerance"] and not info["notes"]
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([name, name + ".json"])  # no temporary left

    # Read back without nao's model code, at batch sizes other than the traced one, against nao.load.
    loaded = nao.load(search_run)
    x = loaded.preprocess(torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        ref = loaded.model(x)
    for batch in (x, x[:1]):
        if fmt == "torchscript":
            got = torch.jit.load(str(out))(batch)
        else:
            import onnxruntime as ort

            sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            got = torch.from_numpy(sess.run(["logits"], {"images": batch.numpy()})[0])
        assert got.shape == (len(batch), 10)
        assert (got - ref[: len(batch)]).abs().max() <= 1e-4


def test_export_has_no_auxiliary_head_or_drop_path(tmp_path):
    """A network trained with both exports the eval-mode graph: deterministic, no aux head, no random ops."""
    from nao.deploy.export import export_model
    from nao.deploy.model import open_trained
    from nao.nn.network import NetworkConfig, build_network
    from nao.spaces import get_space
    from nao.train.classifier import TrainConfig, make_runtime, train_classifier

    space = get_space("nao-ws")
    arch = space.sample(np.random.default_rng(0))
    cfg = NetworkConfig(channels=4, layers=1, auxiliary=True, drop_path=0.3, num_classes=3)
    from dataclasses import asdict

    from nao.data.cifar import ImageSet

    g = torch.Generator().manual_seed(0)
    data = ImageSet(torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(16) % 3)
    meta = {"arch": space.format(arch), "space": space.name, "network": asdict(cfg), "dataset": "cifar10"}
    result = train_classifier(build_network(space, arch, cfg), data, {"test": data},
                              TrainConfig(epochs=1, batch_size=8, aux_weight=0.4), make_runtime("cpu"),
                              out_dir=tmp_path / "run", meta=meta, quiet=True)
    assert result.ok
    assert any(k.startswith("auxiliary_head.") for k in load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"])
    trained = open_trained(tmp_path / "run")
    assert trained.network["auxiliary"] is False and trained.network["drop_path"] == 0.0
    assert trained.notes and "older nao" in trained.notes[0]  # no data record: assumed, and said
    export_model(trained, "onnx", tmp_path / "m.onnx")
    export_model(trained, "torchscript", tmp_path / "m.pt")
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert not ops & {"RandomUniform", "RandomUniformLike", "RandomNormal", "Bernoulli", "Dropout"}
    graph = str(torch.jit.load(str(tmp_path / "m.pt")).inlined_graph)
    assert "aten::rand" not in graph and "auxiliary" not in graph  # (dropout is there, called with train=False)


@pytest.mark.parametrize("argv, fragment", [
    (["--format", "tflite", "--out", "m.tfl"], "invalid choice: 'tflite'"),
    (["--out", "m.bin"], "cannot tell the format"),
    (["--format", "onnx", "--out", "{tmp}"], "is a directory"),
    (["--format", "onnx", "--out", "m.onnx", "--check-batch", "0"], "--check-batch"),
    (["--out", "{tmp}/file/m.pt"], "is a file, not a folder"),
])
def test_export_bad_flags_exit_2_and_write_nothing(folder_run, tmp_path, capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("a file where a folder would go")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(["export", str(folder_run[0]), *argv])
    except SystemExit as e:  # argparse's own errors (an unknown --format)
        code = e.code
    assert code == 2
    assert fragment in _one_line_error(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_missing_onnx_extra_names_the_pip_command(folder_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    assert main(["export", str(folder_run[0]), "--out", str(tmp_path / "m.onnx")]) == 2
    err = _one_line_error(capsys)
    assert "onnxruntime" in err and 'pip install "nao[export]"' in err
    assert list(tmp_path.iterdir()) == []
    # TorchScript needs no extra.
    assert main(["export", str(folder_run[0]), "--out", str(tmp_path / "m.pt")]) == 0


def test_failed_check_is_one_line_exit_1_and_leaves_nothing(folder_run, tmp_path, capsys, monkeypatch):
    import nao.deploy.export as ex

    real = ex._torchscript_runner
    monkeypatch.setattr(ex, "_torchscript_runner", lambda path: (lambda x: real(path)(x) + 0.1))
    assert main(["export", str(folder_run[0]), "--out", str(tmp_path / "m.pt")]) == 1
    assert "check failed" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def _stopped_run(tmp_path: Path, kind: str) -> Path:
    run = tmp_path / kind
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": kind}))
    return run


@pytest.mark.parametrize("make, fragment", [
    (lambda t: t / "nowhere", "no such file or directory"),
    (lambda t: t, "neither a search run directory nor a nao train output folder"),
    (lambda t: _stopped_run(t, "tabular"), "tabular run"),
    (lambda t: _stopped_run(t, "supernet-cnn"), "stopped before its final training"),
    (lambda t: _stopped_run(t, "supernet-rnn"), "no final training"),
])
def test_sources_without_a_model_exit_2(tmp_path, capsys, make, fragment):
    src = make(tmp_path)
    for argv in (["export", str(src), "--out", str(tmp_path / "m.pt")],
                 ["predict", str(src), "--data-dir", str(tmp_path)]):
        assert main(argv) == 2
        assert fragment in _one_line_error(capsys)
    assert not (tmp_path / "m.pt").exists()


def test_foreign_unfinished_and_language_model_checkpoints_exit_2(folder_run, tmp_path, capsys):
    foreign = tmp_path / "checkpoint.pt"
    foreign.write_text("not a checkpoint")
    assert main(["export", str(foreign), "--out", str(tmp_path / "m.pt")]) == 2
    assert "not a readable nao checkpoint" in _one_line_error(capsys)

    state = load_checkpoint(folder_run[0] / "checkpoint.pt")
    save_checkpoint(tmp_path / "half" / "checkpoint.pt", {**state, "epoch": 1})
    assert main(["export", str(tmp_path / "half"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "stopped at epoch 1 of 2" in _one_line_error(capsys)

    save_checkpoint(tmp_path / "lm" / "checkpoint.pt", {"model": {}, "config": {}, "meta": {"task": "ptb", "arch": "lstm"}})
    assert main(["export", str(tmp_path / "lm"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "LSTM baseline language model" in _one_line_error(capsys)
    assert not (tmp_path / "m.pt").exists()


# -- load and predict -----------------------------------------------------------------------------------
def test_load_gives_an_eval_module_preprocessing_and_class_names(folder_run):
    run, data = folder_run
    loaded = nao.load(run)
    assert not loaded.model.training and loaded.class_names == ["cat", "dog", "eel"]
    assert loaded.preprocess.image_size == 8 and loaded.meta["accuracy"].keys() == {"val_acc", "test_acc"}
    img = Image.open(next((data / "dog").glob("*.png")))
    by_pil = loaded.probabilities([img])
    by_path = loaded.probabilities(next((data / "dog").glob("*.png")))
    assert torch.allclose(by_pil, by_path) and by_pil.shape == (1, 3)
    # uint8 tensors of any size / channel count; a grey (H, W) tensor becomes RGB.
    assert loaded.probabilities(torch.zeros(2, 3, 20, 20, dtype=torch.uint8)).shape == (2, 3)
    assert loaded.probabilities(torch.zeros(9, 9, dtype=torch.uint8)).shape == (1, 3)
    top = loaded.predict(img, top_k=2)[0]
    assert len(top) == 2 and top[0][1] >= top[1][1] and {t[0] for t in top} <= set(loaded.class_names)
    with pytest.raises(DataError, match="uint8"):
        loaded.probabilities(torch.zeros(3, 8, 8))


def test_load_matches_training_evaluation(folder_run, capsys):
    """nao.load + the folder reader give the test accuracy nao evaluate measures on the same split."""
    from nao.data.folder import load_image_folder

    run, data = folder_run
    loaded = nao.load(run)
    test = load_image_folder(data, image_size=8, seed=0).test
    acc = float((loaded.probabilities(test.images).argmax(1) == test.labels).float().mean())
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint.pt")]) == 0
    assert acc == pytest.approx(json.loads(capsys.readouterr().out)["test_acc"], abs=1e-4)


def test_predict_folder_with_class_subfolders_writes_csv_accuracy_and_confusion(folder_run, tmp_path, capsys):
    run, data = folder_run
    loaded = nao.load(run)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run), "--data-dir", str(data), "--top-k", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 30 and set(rows[0]) == {"path", "true", "correct", "pred_1", "prob_1", "pred_2", "prob_2"}
    assert all(float(r["prob_1"]) >= float(r["prob_2"]) for r in rows)
    right = sum(int(r["correct"]) for r in rows)
    assert f"accuracy {right / 30:.4f} ({right}/30)" in printed and "confusion matrix" in printed
    # The CSV's predictions are nao.load's on the same files.
    files = [data / r["path"] for r in rows]
    assert [r["pred_1"] for r in rows] == [loaded.class_names[i] for i in loaded.probabilities(files).argmax(1)]
    # The confusion matrix rows sum to the images of each class.
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion")) + 2
    assert [sum(map(int, line.split()[1:])) for line in lines[start:start + 3]] == [10, 10, 10]


def test_predict_flat_folder_and_bad_images(folder_run, tmp_path, capsys):
    run, data = folder_run
    flat = tmp_path / "flat"
    flat.mkdir()
    _image((30, 200, 30), (50, 20), 0, "L").save(flat / "grey.png")
    _image((30, 200, 30), (5, 5), 1, "RGBA").save(flat / "tiny.png")
    assert main(["predict", str(run), "--data-dir", str(flat)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "path,pred_1,prob_1" and len(captured.out.splitlines()) == 3
    assert "2 images" in captured.err and "accuracy" not in captured.err

    (flat / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(40)))
    assert main(["predict", str(run), "--data-dir", str(flat), "--out", str(tmp_path / "p.csv")]) == 2
    assert "broken.png: not a readable image" in _one_line_error(capsys)
    assert not (tmp_path / "p.csv").exists()
    assert main(["predict", str(run), "--data-dir", str(flat), "--out", str(tmp_path)]) == 2
    assert "is a directory" in _one_line_error(capsys)


def test_predict_and_evaluate_refuse_data_that_do_not_match(folder_run, tmp_path, capsys):
    run, _ = folder_run
    other = _folder(tmp_path / "other", per_class=10, classes={"cat": (200, 30, 30), "fox": (200, 120, 0)})
    assert main(["predict", str(run), "--data-dir", str(other)]) == 2
    assert "['fox'] are not classes of the model" in _one_line_error(capsys)
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--data-dir", str(other)]) == 2
    assert "do not match" in _one_line_error(capsys)
    # The same classes but other images: the seeded split is not the one trained on.
    more = _folder(tmp_path / "more", per_class=12)
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--data-dir", str(more)]) == 2
    assert "not the held-out one" in _one_line_error(capsys)


def test_old_checkpoint_without_a_record_falls_back_and_says_so(folder_run, tmp_path, capsys):
    run, data = folder_run
    state = load_checkpoint(run / "checkpoint.pt")
    old_meta = {k: v for k, v in state["meta"].items() if k != "data"}
    save_checkpoint(tmp_path / "old" / "checkpoint.pt", {**state, "meta": old_meta})
    loaded = nao.load(tmp_path / "old")
    assert loaded.class_names == ["cat", "dog", "eel"] and loaded.preprocess.image_size == 8
    assert "older nao" in loaded.meta["notes"][0]
    assert main(["evaluate", "--checkpoint", str(tmp_path / "old" / "checkpoint.pt")]) == 0
    assert "records no split" in capsys.readouterr().err


def test_search_final_checkpoint_records_its_data_and_evaluates_alone(search_run, capsys):
    state = load_checkpoint(search_run / "final" / "checkpoint.pt")
    record = state["meta"]["data"]
    assert record["dataset"] == "digits" and record["classes"] == [str(i) for i in range(10)]
    assert record["image_size"] == 8 and state["meta"]["network"]["num_classes"] == 10
    assert main(["evaluate", "--checkpoint", str(search_run / "final" / "checkpoint.pt")]) == 0
    result = json.loads((search_run / "result.json").read_text())
    assert json.loads(capsys.readouterr().out)["test_acc"] == pytest.approx(result["final"]["test_acc"], abs=1e-4)


# -- wiring ---------------------------------------------------------------------------------------------
def test_predict_and_predict_eval_are_different_commands():
    parser = build_parser()
    assert parser.parse_args(["predict", "r", "--data-dir", "d"]).func.__name__ == "run_predict"
    assert parser.parse_args(["predict-eval", "--benchmark", "b"]).command == "predict-eval"


def test_import_nao_stays_light():
    code = "import sys, nao; assert 'torch' not in sys.modules; print(callable(nao.load))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_preprocess_resizes_as_the_training_data_were(tmp_path):
    from nao.data.cifar import ImageSet, downsample
    from nao.data.folder import read_image
    from nao.deploy import Preprocess

    x = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pil = Image.fromarray(x.permute(1, 2, 0).numpy())
    # CIFAR shrunk for training by block averaging: tensors and Pillow images alike.
    area = Preprocess(16, (0.0,) * 3, (1.0,) * 3, "area")
    want = downsample(ImageSet(x[None], torch.zeros(1)), 16).images[0]
    assert torch.equal(area.to_uint8(x)[0], want) and torch.equal(area.to_uint8(pil)[0], want)
    # Image folders were resized by Pillow while read: the same pixels as the folder loader's.
    pil.save(tmp_path / "a.png")
    folder = Preprocess(12, (0.0,) * 3, (1.0,) * 3, "bilinear")
    assert torch.equal(folder.to_uint8(tmp_path / "a.png")[0], torch.from_numpy(read_image(tmp_path / "a.png", 12)))
    assert torch.equal(folder.to_uint8(x)[0], torch.from_numpy(read_image(tmp_path / "a.png", 12)))


def test_language_model_exports_as_one_torchscript_step(tmp_path, capsys):
    """A recurrent-cell LM: TorchScript, one word per call, equal to the model run over the whole sequence."""
    from nao.data.corpus import load_corpus
    from nao.nn.rnn import build_model
    from nao.spaces import get_space
    from nao.train.lm import preset, train_lm

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    for split, n in (("train", 60), ("valid", 20), ("test", 20)):
        lines = [" ".join(words[(int(s) + k) % 12] for k in range(5)) for s in rng.integers(12, size=n)]
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    corpus = load_corpus(tmp_path)
    space = get_space("rnn")
    arch = space.sample(rng)
    cfg = preset("tiny", epochs=1, hidden_size=16)
    model = build_model(cfg.model, len(corpus.vocab), genotype=space.decode(arch))
    train_lm(model, corpus, cfg, out_dir=tmp_path / "lm", quiet=True,
             meta={"task": "ptb", "arch": space.format(arch), "space": "rnn"})
    assert main(["export", str(tmp_path / "lm"), "--format", "onnx", "--out", str(tmp_path / "lm.onnx")]) == 2
    assert "exports as --format torchscript" in _one_line_error(capsys)
    assert main(["export", str(tmp_path / "lm"), "--out", str(tmp_path / "lm.pt"), "--data-dir", str(tmp_path)]) == 0
    info = json.loads((tmp_path / "lm.pt.json").read_text())
    assert info["vocab"] == list(corpus.vocab.words) and info["weights"] == "best.pt"
    step = torch.jit.load(str(tmp_path / "lm.pt"))
    tokens = corpus.test[:7].view(7, 1)  # (T, B=1)
    h = torch.zeros(1, info["hidden_size"])
    stepped = []
    for t in range(7):
        logits, h = step(tokens[t], h)
        stepped.append(logits)
    model.load_state_dict(load_checkpoint(tmp_path / "lm" / "best.pt")["model"])
    with torch.no_grad():
        whole, _, _ = model.eval()(tokens, model.init_hidden(1))
    assert (torch.stack(stepped) - whole).abs().max() < 1e-4
    # Other uses of a language model stay refused in one line.
    assert main(["predict", str(tmp_path / "lm"), "--data-dir", str(tmp_path)]) == 2
    assert "language model" in _one_line_error(capsys)
