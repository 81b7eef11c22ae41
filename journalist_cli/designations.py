"""Human-friendly designations for sources: "wise otter" / "loutre sage".

A designation is derived from the source id alone (SHA-256 with a label), so
every journalist, on every machine, sees the same one without any shared
state. The English and French lists are aligned pair by pair: index i means
the same word in both languages, so "wise otter" and "loutre sage" name the
same source. French adjectives are all epicene (same form for both genders)
so any adjective fits any animal.

With 100 adjectives and 100 animals two sources share a designation with
probability about n²/20000; the id (or a prefix) always disambiguates, and
`resolve` refuses an ambiguous designation rather than guess.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Language = Literal["en", "fr"]
LANGUAGES: tuple[Language, ...] = ("en", "fr")
LABEL = b"lanterne/v1/designation\x00"

# (English, French) pairs. Never reorder or remove: designations would change.
ADJECTIVES: tuple[tuple[str, str], ...] = (
    ("calm", "calme"),
    ("wise", "sage"),
    ("brave", "brave"),
    ("agile", "agile"),
    ("skilful", "habile"),
    ("swift", "rapide"),
    ("docile", "docile"),
    ("loyal", "fidèle"),
    ("free", "libre"),
    ("peaceful", "paisible"),
    ("kind", "aimable"),
    ("honest", "honnête"),
    ("modest", "modeste"),
    ("sober", "sobre"),
    ("quiet", "tranquille"),
    ("shy", "timide"),
    ("humble", "humble"),
    ("noble", "noble"),
    ("rebel", "rebelle"),
    ("sturdy", "solide"),
    ("supple", "souple"),
    ("steady", "stable"),
    ("famous", "célèbre"),
    ("splendid", "splendide"),
    ("practical", "pratique"),
    ("friendly", "sympathique"),
    ("droll", "drôle"),
    ("young", "jeune"),
    ("red", "rouge"),
    ("yellow", "jaune"),
    ("pink", "rose"),
    ("beige", "beige"),
    ("mauve", "mauve"),
    ("crimson", "pourpre"),
    ("huge", "énorme"),
    ("vast", "vaste"),
    ("fragile", "fragile"),
    ("robust", "robuste"),
    ("sensitive", "sensible"),
    ("lucid", "lucide"),
    ("candid", "candide"),
    ("placid", "placide"),
    ("fearless", "intrépide"),
    ("superb", "superbe"),
    ("worthy", "digne"),
    ("unique", "unique"),
    ("early", "précoce"),
    ("fierce", "féroce"),
    ("fleet", "véloce"),
    ("whimsical", "fantasque"),
    ("zany", "loufoque"),
    ("baroque", "baroque"),
    ("comic", "comique"),
    ("poetic", "poétique"),
    ("magic", "magique"),
    ("mystic", "mystique"),
    ("pacific", "pacifique"),
    ("lyrical", "lyrique"),
    ("rustic", "rustique"),
    ("exotic", "exotique"),
    ("nordic", "nordique"),
    ("arctic", "arctique"),
    ("useful", "utile"),
    ("nimble", "leste"),
    ("tender", "tendre"),
    ("simple", "simple"),
    ("sincere", "sincère"),
    ("stoic", "stoïque"),
    ("lunar", "lunaire"),
    ("solar", "solaire"),
    ("polar", "polaire"),
    ("alpine", "alpestre"),
    ("sylvan", "sylvestre"),
    ("sublime", "sublime"),
    ("rare", "rare"),
    ("honourable", "honorable"),
    ("affable", "affable"),
    ("capable", "capable"),
    ("dynamic", "dynamique"),
    ("energetic", "énergique"),
    ("magnetic", "magnétique"),
    ("cosmic", "cosmique"),
    ("epic", "épique"),
    ("heroic", "héroïque"),
    ("classic", "classique"),
    ("melodic", "mélodique"),
    ("rhythmic", "rythmique"),
    ("olympic", "olympique"),
    ("logical", "logique"),
    ("fertile", "fertile"),
    ("mobile", "mobile"),
    ("scarlet", "écarlate"),
    ("turquoise", "turquoise"),
    ("indigo", "indigo"),
    ("olive", "olive"),
    ("lilac", "lilas"),
    ("ivory", "ivoire"),
    ("emerald", "émeraude"),
    ("orange", "orange"),
    ("khaki", "kaki"),
)

ANIMALS: tuple[tuple[str, str], ...] = (
    ("otter", "loutre"),
    ("fox", "renard"),
    ("badger", "blaireau"),
    ("heron", "héron"),
    ("owl", "hibou"),
    ("lynx", "lynx"),
    ("wolf", "loup"),
    ("bear", "ours"),
    ("beaver", "castor"),
    ("hare", "lièvre"),
    ("hedgehog", "hérisson"),
    ("squirrel", "écureuil"),
    ("stag", "cerf"),
    ("ibex", "bouquetin"),
    ("chamois", "chamois"),
    ("marmot", "marmotte"),
    ("weasel", "belette"),
    ("stoat", "hermine"),
    ("swallow", "hirondelle"),
    ("robin", "rouge-gorge"),
    ("sparrow", "moineau"),
    ("finch", "pinson"),
    ("wren", "roitelet"),
    ("crow", "corneille"),
    ("raven", "corbeau"),
    ("magpie", "pie"),
    ("jay", "geai"),
    ("swan", "cygne"),
    ("goose", "oie"),
    ("duck", "canard"),
    ("stork", "cigogne"),
    ("crane", "grue"),
    ("pelican", "pélican"),
    ("puffin", "macareux"),
    ("gull", "mouette"),
    ("albatross", "albatros"),
    ("falcon", "faucon"),
    ("eagle", "aigle"),
    ("kite", "milan"),
    ("buzzard", "buse"),
    ("kestrel", "crécerelle"),
    ("dolphin", "dauphin"),
    ("whale", "baleine"),
    ("seal", "phoque"),
    ("walrus", "morse"),
    ("octopus", "pieuvre"),
    ("squid", "calmar"),
    ("crab", "crabe"),
    ("lobster", "homard"),
    ("turtle", "tortue"),
    ("lizard", "lézard"),
    ("gecko", "gecko"),
    ("frog", "grenouille"),
    ("toad", "crapaud"),
    ("newt", "triton"),
    ("salmon", "saumon"),
    ("trout", "truite"),
    ("pike", "brochet"),
    ("eel", "anguille"),
    ("tuna", "thon"),
    ("bee", "abeille"),
    ("ant", "fourmi"),
    ("butterfly", "papillon"),
    ("beetle", "scarabée"),
    ("dragonfly", "libellule"),
    ("cricket", "grillon"),
    ("snail", "escargot"),
    ("horse", "cheval"),
    ("donkey", "âne"),
    ("goat", "chèvre"),
    ("rabbit", "lapin"),
    ("mole", "taupe"),
    ("panda", "panda"),
    ("koala", "koala"),
    ("kangaroo", "kangourou"),
    ("lemur", "lémurien"),
    ("gibbon", "gibbon"),
    ("zebra", "zèbre"),
    ("giraffe", "girafe"),
    ("camel", "chameau"),
    ("llama", "lama"),
    ("bison", "bison"),
    ("reindeer", "renne"),
    ("yak", "yak"),
    ("tiger", "tigre"),
    ("lion", "lion"),
    ("leopard", "léopard"),
    ("cheetah", "guépard"),
    ("jaguar", "jaguar"),
    ("puma", "puma"),
    ("meerkat", "suricate"),
    ("penguin", "manchot"),
    ("parrot", "perroquet"),
    ("toucan", "toucan"),
    ("flamingo", "flamant"),
    ("peacock", "paon"),
    ("hummingbird", "colibri"),
    ("ostrich", "autruche"),
    ("mink", "vison"),
    ("ferret", "furet"),
)


def _indices(source_id: str) -> tuple[int, int]:
    digest = hashlib.sha256(LABEL + source_id.encode("utf-8")).digest()
    # 8 bytes each: the modulo bias is below 2**-56, invisible.
    adjective = int.from_bytes(digest[:8], "big") % len(ADJECTIVES)
    animal = int.from_bytes(digest[8:16], "big") % len(ANIMALS)
    return adjective, animal


def designation(source_id: str, language: Language = "en") -> str:
    """The designation of ``source_id``: "wise otter" in English, "loutre sage" in French."""
    adjective, animal = _indices(source_id)
    if language == "fr":
        return f"{ANIMALS[animal][1]} {ADJECTIVES[adjective][1]}"
    return f"{ADJECTIVES[adjective][0]} {ANIMALS[animal][0]}"


def slug(source_id: str, language: Language = "en") -> str:
    """The designation as a directory name: "wise-otter"."""
    return designation(source_id, language).replace(" ", "-")


def normalise(text: str) -> str:
    """How typed designations are compared: case, hyphens and spacing do not matter."""
    return " ".join(text.replace("-", " ").replace("_", " ").casefold().split())


def matches(source_id: str, typed: str) -> bool:
    """Whether ``typed`` is this source's designation in any language."""
    wanted = normalise(typed)
    return any(normalise(designation(source_id, lang)) == wanted for lang in LANGUAGES)
