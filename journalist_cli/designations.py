"""Human-friendly designations for sources: "wise otter" / "loutre sage".

A designation is derived from the source id alone (SHA-256 with a label), so
every journalist, on every machine, sees the same one without any shared
state. The English and French lists are aligned pair by pair: index i means
the same word in both languages, so "wise otter" and "loutre sage" name the
same source. French adjectives are all epicene (same form for both genders)
so any adjective fits any animal.

With 100 adjectives and 100 animals two sources share a designation with
probability about n²/20000 (one chance in two from about 118 sources). So a
designation never names a source alone: every listing adds a short id to a
designation another source shares (``labels``), output folders do too, and
`Vault.resolve` refuses an ambiguous designation or prefix rather than guess.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

Language = Literal["en", "fr"]
SHORT_ID = 8  # characters of a source id shown to tell apart sources sharing a designation
MIN_TYPED_PREFIX = 3  # "red" is the shortest word; shorter prefixes match too much
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


def short_ids(ids: Iterable[str]) -> dict[str, str]:
    """The shortest prefix of each id, from ``SHORT_ID`` characters, that no
    other id of ``ids`` shares (the whole id if it must: a hostile server can
    choose ids with a common prefix)."""
    unique = sorted(set(ids))
    result = {}
    for i, sid in enumerate(unique):
        neighbours = unique[max(0, i - 1) : i] + unique[i + 1 : i + 2]
        common = max((_common_prefix(sid, n) for n in neighbours), default=0)
        result[sid] = sid[: max(SHORT_ID, common + 1)]
    return result


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def labels(ids: Iterable[str], language: Language = "en") -> dict[str, str]:
    """How to name each source among ``ids``: its designation, followed by a
    short id in brackets when another source of ``ids`` has the same one."""
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for sid in set(ids):
        groups[designation(sid, language)].append(sid)
    result = {}
    for name, members in groups.items():
        if len(members) == 1:
            result[members[0]] = name
        else:
            result.update({sid: f"{name} ({short})" for sid, short in short_ids(members).items()})
    return result


def folder_names(source_id: str, others: Iterable[str], language: Language = "en") -> list[str]:
    """Folder names for a source's decrypted files, in order of preference: the
    designation slug when no other source of ``others`` shares it, then with
    a short id, then with the whole id (always unique)."""
    base = slug(source_id, language)
    twins = [o for o in others if o != source_id and slug(o, language) == base]
    short = short_ids([source_id, *twins])[source_id]
    names = [] if twins else [base]
    names += [f"{base}-{short}", f"{base}-{source_id}"]
    return list(dict.fromkeys(names))


def matches_prefix(source_id: str, typed: str) -> bool:
    """Whether ``typed`` begins this source's designation in any language
    ("nimble" for "nimble ibex"); at least ``MIN_TYPED_PREFIX`` characters."""
    wanted = normalise(typed)
    if len(wanted) < MIN_TYPED_PREFIX:
        return False
    return any(normalise(designation(source_id, lang)).startswith(wanted) for lang in LANGUAGES)
