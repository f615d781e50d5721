"""Using the model a search or training found: export it, load it, predict with it.

- :func:`nao.deploy.model.open_trained`: the trained classifier of a run directory, ``nao train``
  folder or checkpoint, with what inference needs (input size, mean/std, class names, accuracy).
- :func:`nao.deploy.export.export_model`: TorchScript or ONNX, checked against PyTorch, JSON beside it.
- :func:`nao.deploy.inference.load` (also ``nao.load``): an ``nn.Module`` with its preprocessing and class names.
- :func:`nao.deploy.predict.predict_folder`: predictions for every image of a folder.

>>> from nao.deploy import load, LoadedModel
>>> LoadedModel.__name__
'LoadedModel'
"""

from nao.deploy.inference import LoadedModel, Preprocess, load

__all__ = ["LoadedModel", "Preprocess", "load"]
