"""One resolver for an architecture given on the command line: a published name or a string.

``nao train --arch``, ``nao train --task ptb --arch`` and ``nao show ARCH`` all accept either a
published cell's name (``naonet-a``, ``darts-v2``, ``NAO``, ``DARTS_V2``, ``ENAS``; any case) or
the architecture in its space's text form; :func:`resolve_arch` turns both into
``(space, architecture)``:

* a known name picks its own space (a ``--space`` given as well must agree);
* a string is parsed by ``--space``, or else by the first space of the *family* that accepts it;
* a family (``"cell"``: the conv cell spaces, ``"rnn"``: the recurrent ones) also limits which
  ``--space`` is accepted, since the command that asks can only build that kind of network.

Names come from :mod:`nao.spaces.known` (conv cells) and each recurrent space's own table.

>>> space, arch = resolve_arch("darts_v2", family="rnn")
>>> space.name
'rnn-darts'
>>> resolve_arch("naonet-a")[0].name
'nao'
>>> resolve_arch("naonet-a", "darts")
Traceback (most recent call last):
...
nao.errors.ConfigError: --arch NAONet-A lives in space 'nao', not --space 'darts'
"""

from __future__ import annotations

from dataclasses import dataclass

from nao.errors import ConfigError, NaoError, OutOfSpaceError
from nao.spaces.base import Architecture, SearchSpace


@dataclass(frozen=True)
class Family:
    """Spaces that build the same kind of network, in the order a bare string is tried."""

    noun: str
    spaces: tuple[str, ...]


#: The families a command can ask for.
FAMILIES = {
    "cell": Family("cell", ("darts", "nao", "nao-ws")),
    "rnn": Family("recurrent cell", ("rnn", "rnn-darts", "rnn-enas")),
}
#: Conv cell spaces, in the order a bare string is tried.
CELL_SPACES = FAMILIES["cell"].spaces
#: Recurrent cell spaces, in the order a bare string is tried.
RNN_SPACES = FAMILIES["rnn"].spaces


def published(space: SearchSpace) -> dict[str, tuple[str, Architecture]]:
    """Published architectures of ``space``: lower-case name -> (name as published, architecture)."""
    from nao.spaces.known import KNOWN

    out = {key: (k.name, space.parse(k.genotype())) for key, k in KNOWN.items() if k.space == space.name}
    named = getattr(space, "named_architectures", None)  # recurrent spaces keep their own table
    if named is not None:
        out.update({name.lower(): (name, arch) for name, arch in named().items()})
    return out


def check_space(space: str, family: str) -> None:
    """Raise :class:`ConfigError` unless ``space`` belongs to ``family``."""
    fam = _family(family)
    if space not in fam.spaces:
        raise ConfigError(f"--space {space!r} is not a {fam.noun} space; choose one of {', '.join(fam.spaces)}")


def resolve_arch(
    text: str, space: str | None = None, family: str | None = None, label: str = "--arch"
) -> tuple[SearchSpace, Architecture]:
    """``(space, architecture)`` for a published name or an architecture string (module docstring).

    Args:
        text: the name or string.
        space: the space named by the user (``--space``), if any.
        family: ``"cell"`` or ``"rnn"`` to accept only that family's spaces; ``None`` accepts any
            space, but then a string needs ``space`` unless it is a name.
        label: how the argument is called in messages (``--arch`` or ``ARCH``).

    Raises:
        ConfigError: ``space`` outside ``family``, or a name that lives in another space.
        OutOfSpaceError: neither a known name nor a string any tried space accepts.
    """
    from nao.spaces import get_space

    if family is not None and space is not None:
        check_space(space, family)
    fam = _family(family) if family is not None else None
    candidates = fam.spaces if fam is not None else tuple(s for f in FAMILIES.values() for s in f.spaces)
    known: dict[str, list[str]] = {}  # space -> its names as published, for the error message
    # The named space's own names first: a name it knows must never resolve elsewhere.
    for name in ([space] if space in candidates else []) + [s for s in candidates if s != space]:
        sp = get_space(name)
        names = published(sp)
        known[name] = [shown for shown, _ in names.values()]
        hit = names.get(text.strip().lower())
        if hit is not None:
            if space is not None and space != name:
                raise ConfigError(f"{label} {hit[0]} lives in space {name!r}, not --space {space!r}")
            return sp, hit[1]
    tries = [space] if space is not None else list(fam.spaces if fam is not None else ())
    if not tries:
        raise ConfigError(f"{label} {_short(text)!r} is not a known name; give --space to read it as an architecture")
    errors = []
    for name in tries:
        sp = get_space(name)
        try:
            return sp, sp.parse(text)
        except NaoError as e:
            errors.append(f"{name}: {e}")
    noun = fam.noun if fam is not None else "architecture"
    names = [shown for name in tries for shown in known.get(name, [])]
    hint = f"; known names: {', '.join(names)}" if names else ""
    raise OutOfSpaceError(f"{label} {_short(text)!r} is neither a known {noun} name nor a valid genotype "
                          f"({'; '.join(errors)}){hint}")


def _family(family: str) -> Family:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ConfigError(f"unknown architecture family {family!r}; choose one of {', '.join(FAMILIES)}") from None


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
