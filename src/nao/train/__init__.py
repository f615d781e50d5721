"""Training loops: image classifiers (:mod:`nao.train.classifier`).

>>> from nao.train.classifier import TrainConfig
>>> TrainConfig().epochs
600
"""
