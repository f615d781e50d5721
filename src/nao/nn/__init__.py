"""Neural network building blocks: the op table and cell networks.

>>> from nao.nn.ops import OPS
>>> "sep_conv_3x3" in OPS
True
"""
