"""Image-folder datasets: layout, resizing, stratified seeded splits, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nao.data.folder import is_image_folder, load_image_folder
from nao.errors import DataError

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "eel": (30, 30, 200)}


def _tree(root, per_class=10, sizes=((20, 12), (7, 7), (40, 33))):
    """Three classes of solid-colour images of mixed sizes and modes, PNG and JPEG."""
    for c, colour in COLOURS.items():
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            img = Image.new("RGB", (w, h), colour)
            if i % 3 == 0:
                img.convert("L").convert("RGB").save(root / c / f"{i}.jpg", quality=95)  # greyscale-looking JPEG
                img.save(root / c / f"{i}b.JPEG", quality=95)
            elif i % 3 == 1:
                img.convert("RGBA").save(root / c / f"{i}.png")
            else:
                img.convert("P").save(root / c / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image; ignored")
    (root / ".hidden").mkdir()
    return root


def test_reads_classes_in_sorted_order_as_uint8_nchw(tmp_path):
    splits = load_image_folder(_tree(tmp_path / "pets"), image_size=8, seed=0)
    assert splits.name == "pets" and splits.num_classes == 3 and splits.info["classes"] == ["cat", "dog", "eel"]
    assert sum(splits.sizes()) == 3 * 14
    for part in (splits.train, splits.val, splits.test):
        assert part.images.dtype == torch.uint8 and tuple(part.images.shape[1:]) == (3, 8, 8)
        assert set(part.labels.tolist()) == {0, 1, 2}  # stratified: every class in every split
    # A solid colour survives resizing and the PNG palette/alpha conversions: dog is green.
    dog = splits.train.images[splits.train.labels == 1].float().mean((0, 2, 3))
    assert dog[1] > 150 and dog[0] < 80 and dog[2] < 80


def test_split_is_seeded(tmp_path):
    root = _tree(tmp_path)
    a, b = load_image_folder(root, 8, seed=1), load_image_folder(root, 8, seed=1)
    c = load_image_folder(root, 8, seed=2)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.labels, c.train.labels)


def test_corrupt_image_names_the_file(tmp_path):
    root = _tree(tmp_path)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(50)))
    with pytest.raises(DataError, match=r"broken\.png: not a readable image") as e:
        load_image_folder(root, 8)
    assert "\n" not in str(e.value)
    # A truncated JPEG fails too (Pillow would otherwise decode it lazily, later).
    (root / "dog" / "broken.png").unlink()
    good = (root / "eel" / "0.jpg").read_bytes()
    (root / "eel" / "cut.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg"):
        load_image_folder(root, 8)


def test_empty_class_folder_and_too_few_classes(tmp_path):
    root = _tree(tmp_path / "a")
    (root / "fox").mkdir()
    (root / "fox" / "readme.md").write_text("no images")
    with pytest.raises(DataError, match=r"fox: empty class folder"):
        load_image_folder(root, 8)
    one = tmp_path / "b"
    (one / "only").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(one / "only" / "x.png")
    with pytest.raises(DataError, match="at least two"):
        load_image_folder(one, 8)
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(tmp_path / "missing", 8)
    assert is_image_folder(tmp_path / "a" / "..") is False and is_image_folder(one) is False


def test_empty_split_is_an_error(tmp_path):
    root = _tree(tmp_path, per_class=2, sizes=((5, 5),))
    with pytest.raises(DataError, match="split would be empty"):
        load_image_folder(root, 8, fractions=(0.9, 0.05, 0.05))


def test_trains_with_the_training_evaluator(tmp_path):
    from nao.evaluators.training import TrainingEvaluator
    from nao.nn.network import NetworkConfig
    from nao.spaces import get_space
    from nao.train.classifier import TrainConfig

    root = _tree(tmp_path)
    assert is_image_folder(root)
    splits = load_image_folder(root, image_size=8, seed=0)
    space = get_space("darts")
    ev = TrainingEvaluator.from_splits(space, splits, NetworkConfig(channels=4, layers=1, auxiliary=False),
                                       TrainConfig(epochs=1, batch_size=8, aux_weight=0.0, eval_every=0))
    (r,) = ev.evaluate([space.sample(np.random.default_rng(0))])
    assert r.ok and 0 <= r.metrics["val_acc"] <= 1


def test_nao_train_and_evaluate_on_an_image_folder(tmp_path, capsys):
    import json

    from nao.cli import main

    root = _tree(tmp_path / "pets")
    out = tmp_path / "run"
    flags = ["train", "--arch", "naonet-ws", "--dataset", "folder", "--data-dir", str(root), "--image-size", "8",
             "--epochs", "1", "--channels", "4", "--layers", "1", "--batch-size", "8", "--out", str(out)]
    assert main(flags) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    meta = torch.load(out / "checkpoint.pt", weights_only=False)["meta"]
    assert meta["dataset"] == "folder" and meta["classes"] == ["cat", "dog", "eel"] and meta["image_size"] == 8
    assert meta["network"]["num_classes"] == 3 and "val_acc" in trained
    # nao evaluate rebuilds the same seeded split from what the checkpoint recorded.
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.pt")]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["images"] == meta["test_images"] and scored["test_acc"] == pytest.approx(trained["test_acc"], abs=1e-4)


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "folder"], "--dataset folder needs --data-dir"),
    (["--dataset", "folder", "--data-dir", "MISSING"], "missing: not a folder"),
    (["--dataset", "folder", "--data-dir", "TREE", "--image-size", "2"], "too small"),
    (["--dataset", "folder", "--data-dir", "TREE", "--val-size", "5"], "--val-size does not apply"),
    (["--image-size", "12"], "must divide 32"),
])
def test_nao_train_folder_errors_exit_2_without_a_run_directory(tmp_path, capsys, flags, message):
    from nao.cli import main

    tree = str(_tree(tmp_path / "pets"))
    flags = [tree if f == "TREE" else str(tmp_path / "missing") if f == "MISSING" else f for f in flags]
    out = tmp_path / "run"
    assert main(["train", "--arch", "naonet-ws", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_nao_train_resume_refuses_another_image_folder(tmp_path, capsys):
    from nao.cli import main

    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    out = tmp_path / "run"
    flags = ["train", "--arch", "naonet-ws", "--dataset", "folder", "--image-size", "8", "--epochs", "1",
             "--channels", "4", "--layers", "1", "--batch-size", "8", "--out", str(out)]
    assert main([*flags, "--data-dir", str(a)]) == 0
    capsys.readouterr()
    assert main([*flags, "--data-dir", str(b), "--resume"]) == 2
    assert "not this --data-dir/--image-size" in capsys.readouterr().err
