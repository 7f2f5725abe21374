"""Container names: Docker's validity rule and generated `adjective_surname` names."""

import random
import re

from runtime.errors import InvalidParameter

VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_ADJECTIVES = (
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring",
    "eager", "early", "fervent", "fond", "gentle", "happy", "hardy", "keen", "kind", "lucid",
    "merry", "modest", "nimble", "noble", "patient", "quiet", "rapid", "serene", "sharp", "steady",
    "stoic", "sunny", "swift", "tender", "tidy", "vivid", "warm", "wise", "witty", "zealous",
)
_SURNAMES = (
    "agnesi", "babbage", "bohr", "cantor", "curie", "darwin", "dijkstra", "euler", "faraday",
    "fermat", "franklin", "galois", "gauss", "hamilton", "hopper", "hypatia", "kepler", "knuth",
    "lamarr", "lovelace", "maxwell", "meitner", "mendel", "newton", "noether", "pascal", "planck",
    "ramanujan", "riemann", "ritchie", "shannon", "somerville", "tesla", "thompson", "turing",
    "volta", "wiles", "wozniak", "yalow", "zuse",
)


def generate(taken, rng=random):
    # type: (object, random.Random) -> str
    """A free `adjective_surname` name; a digit suffix once the plain ones seem used up."""
    for attempt in range(20):
        name = "%s_%s" % (rng.choice(_ADJECTIVES), rng.choice(_SURNAMES))
        if attempt >= 10:
            name += str(rng.randint(0, 99))
        if name not in taken:
            return name
    return "%s_%d" % (name, rng.randint(100, 10 ** 9))


def validate(name):
    # type: (str) -> str
    """The name without its leading "/", or InvalidParameter."""
    if not VALID_NAME.match(name or ""):
        raise InvalidParameter("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                               % name)
    return name.lstrip("/")
