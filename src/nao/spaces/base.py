"""Architectures as immutable token tuples, and the grammar every search space implements.

A space owns a single token vocabulary shared by all positions (ids ``0..vocab_size-1``)
and says, per position, which ids are allowed: the controller's decoder uses that mask, so
no component outside the space needs magic offsets.

>>> import numpy as np
>>> from nao.spaces import get_space
>>> space = get_space("nb201")
>>> arch = space.sample(np.random.default_rng(0))
>>> space.parse(space.format(arch)) == arch
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from nao.errors import OutOfSpaceError


@dataclass(frozen=True)
class Architecture:
    """An immutable, hashable architecture: the space's name and its token tuple."""

    space: str
    tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        # Accept lists/arrays but always store plain ints so equality and hashing are exact.
        object.__setattr__(self, "tokens", tuple(int(t) for t in self.tokens))


class SearchSpace(ABC):
    """Stateless grammar of a family of architectures.

    Subclasses set ``name``, ``length`` (tokens per architecture) and ``vocab_size`` and
    implement the abstract methods. ``key`` is the identity used for de-duplication:
    architectures that build the same network share a key.
    """

    name: str
    length: int
    vocab_size: int

    # -- grammar -------------------------------------------------------------------------
    @abstractmethod
    def allowed_tokens(self, position: int) -> np.ndarray:
        """Sorted ids allowed at ``position`` (the decoder's mask)."""

    @abstractmethod
    def validate(self, tokens: Sequence[int]) -> None:
        """Raise :class:`OutOfSpaceError` naming the offending position/token if invalid."""

    def is_valid(self, tokens: Sequence[int]) -> bool:
        """Whether ``tokens`` is a sequence of this space."""
        try:
            self.validate(tokens)
        except OutOfSpaceError:
            return False
        return True

    def make(self, tokens: Sequence[int]) -> Architecture:
        """Validate ``tokens`` and wrap them in an :class:`Architecture`."""
        self.validate(tokens)
        return Architecture(self.name, tuple(tokens))

    def check(self, arch: Architecture) -> None:
        """Raise :class:`OutOfSpaceError` if ``arch`` is not an architecture of this space."""
        if arch.space != self.name:
            raise OutOfSpaceError(f"architecture of space {arch.space!r} given to space {self.name!r}")
        self.validate(arch.tokens)

    # -- sampling and moves --------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random token sequence under the grammar (positions independent)."""
        tokens = [int(rng.choice(self.allowed_tokens(i))) for i in range(self.length)]
        return self.make(tokens)

    def sample_distinct(
        self, rng: np.random.Generator, n: int, exclude: Collection[Hashable] = (),
        key: Callable[[Architecture], Hashable] | None = None,
        accept: Callable[[Architecture], bool] | None = None,
    ) -> list[Architecture]:
        """Up to ``n`` random architectures with distinct keys, none of them in ``exclude``.

        ``key`` defaults to :meth:`key`; strategies pass the key of the pruned network so that
        two table rows of one network count as one. ``accept``, if given, filters the draws
        (a constrained search's feasibility). Gives up after ``100 n + 1000`` draws, so a
        nearly exhausted space (or a rarely accepted filter) returns fewer.
        """
        key = key or self.key
        taken = set(exclude)
        out: list[Architecture] = []
        tries = 0
        while len(out) < n and tries < 100 * n + 1000:
            tries += 1
            arch = self.sample(rng)
            k = key(arch)
            if k not in taken:
                taken.add(k)
                if accept is None or accept(arch):
                    out.append(arch)
        return out

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every distinct-key architecture one token change away, in a fixed order."""
        own = self.key(arch)
        seen: set[Hashable] = {own}
        out: list[Architecture] = []
        for i in range(self.length):
            for t in self.allowed_tokens(i):
                if t == arch.tokens[i]:
                    continue
                tokens = list(arch.tokens)
                tokens[i] = int(t)
                if not self.is_valid(tokens):
                    continue
                cand = Architecture(self.name, tuple(tokens))
                k = self.key(cand)
                if k not in seen:
                    seen.add(k)
                    out.append(cand)
        return out

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """One random neighbour (uniform over :meth:`neighbours`)."""
        nbrs = self.neighbours(arch)
        return nbrs[int(rng.integers(len(nbrs)))]

    # -- identity and symmetry -----------------------------------------------------------
    def canonical(self, arch: Architecture) -> Architecture:
        """A representative shared by all architectures with the same key (default: itself)."""
        return arch

    def key(self, arch: Architecture) -> Hashable:
        """Stable identity for de-duplication: the canonical token tuple."""
        return self.canonical(arch).tokens

    def augment(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A random equivalent encoding of ``arch`` (same key); default: ``arch`` itself."""
        return arch

    def prune(self, arch: Architecture) -> Architecture:
        """``arch`` with every operation that cannot change the network's output set to its
        no-op (default: ``arch`` itself).

        Unlike :meth:`canonical`, pruning may map architectures with different keys (say,
        two rows of a benchmark table) to one: they build the same function but are distinct
        entries to evaluate. The controller reads architectures through it, so it never has
        to learn that a dead operation does not matter.
        """
        return arch

    def path_encoding(self, arch: Architecture) -> np.ndarray | None:
        """BANANAS' path encoding (White et al., 2021): a fixed-length 0/1 vector with one entry
        per possible input-to-output path, named by the operations along it, set where ``arch``
        has that path. ``None`` (the default) when the space defines none: users then fall back
        to a one-hot encoding of the tokens."""
        return None

    # -- text ----------------------------------------------------------------------------
    @abstractmethod
    def parse(self, text: str) -> Architecture:
        """Read the space's human-readable form; raise :class:`ParseError` naming the problem."""

    @abstractmethod
    def format(self, arch: Architecture) -> str:
        """The space's human-readable form (``parse(format(a)) == a``)."""

    def size(self) -> int | None:
        """Number of distinct token sequences, or ``None`` if not cheaply known."""
        total = 1
        for i in range(self.length):
            total *= len(self.allowed_tokens(i))
        return total

    def token_name(self, token: int) -> str:
        """Human-readable name of a token id (for plots and messages)."""
        return str(token)
