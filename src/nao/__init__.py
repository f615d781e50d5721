"""nao: Neural Architecture Optimization (Luo, Tian, Qin, Chen, Liu; NeurIPS 2018).

>>> import nao
>>> nao.__version__
'0.1.0'
"""

__version__ = "0.1.0"
