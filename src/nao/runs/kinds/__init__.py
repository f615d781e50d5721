"""Run kinds, one module each: its config, presets, flags and :class:`~nao.runs.skeleton.RunKind` class.

=============  ==================================  ===========================================================
kind           ``nao search``                      what scores a candidate
=============  ==================================  ===========================================================
tabular        ``tabular``                         a benchmark table (NAS-Bench-201...)
supernet-cnn   ``cnn`` (``--evaluator supernet``)  a weight-sharing supernet of image cells (NAO-WS)
trained-cnn    ``cnn --evaluator training``        training each image cell from scratch (NAO)
supernet-rnn   ``ptb`` (``--evaluator supernet``)  a weight-sharing supernet of recurrent cells (NAO-WS PTB)
trained-rnn    ``ptb --evaluator training``        training each recurrent cell briefly on a corpus (NAO)
=============  ==================================  ===========================================================

A module registers its kind with :func:`~nao.runs.skeleton.register_kind` and its presets with
:func:`~nao.presets.register_preset`; :data:`nao.registry.KINDS` lists the modules (one line per
kind), and another package adds kinds through the ``nao.kinds`` entry-point group. The CLI builds
``nao search TASK``'s flags from what the kinds declare, so nothing else changes for a new kind.

>>> from nao.registry import KINDS
>>> {"tabular", "supernet-cnn", "trained-cnn", "supernet-rnn", "trained-rnn"} <= set(KINDS.names())
True
"""
