"""The daily digest: what each journalist who asked is told, every day (issue 16 §4).

One mail a day per journalist, at the time of the timer, whether or not
anything arrived; it says only "something new" or "no news", never what, how
much or from whom. The two mails have the same size (subject and body alike)
and are made, and sent, by the same steps: the relay, the mailbox provider
and anyone watching either learn that the timer ran, nothing about arrivals.

"New for them" (days only, as everywhere): a submission for them (from a
source of one of their desks, of no desk, or of any desk if they receive
every desk: docs/DESKS.md) received on the day
the journalist's previous digest went out or later. The day of the previous
digest counts again because a submission that day may have come after the
mail left (the server keeps no finer time): something that arrived before the
digest on day D is announced on D and again on D+1, never missed. A
journalist's first digest looks back to the day before. A journalist whose
mail failed keeps their older day, so their next mail covers everything since.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from server.store.protocols import DigestStore, DigestSubscription

# Identical lengths, checked at import: the subject and the body of a "news"
# mail are exactly as long as those of a "no news" mail.
SUBJECTS = {True: "Lanterne: something new", False: "Lanterne: no news today"}
_STATUS = {
    True: (
        "There is something new for you. Read it with `lanterne pull`.",
        "Il y a du nouveau pour vous. Lisez-le avec `lanterne pull`.",
    ),
    False: (
        "There is nothing new for you today.",
        "Il n'y a rien de nouveau pour vous aujourd'hui.",
    ),
}
_WIDTH = max(len(line.encode()) for pair in _STATUS.values() for line in pair)
_BODY = """\
Lanterne, {day}

{status_en}
{status_fr}

This message is sent every day at the same time, whether or not anything
arrived, and says nothing else: no content, no count, no source.
Ce message part chaque jour a la meme heure, qu'il soit arrive quelque
chose ou non, et ne dit rien d'autre : ni contenu, ni nombre, ni source.
"""


@dataclass(frozen=True)
class Digest:
    """One journalist's mail for one day."""

    subscription: DigestSubscription
    day: str
    news: bool

    @property
    def subject(self) -> str:
        return SUBJECTS[self.news]

    @property
    def body(self) -> str:
        return body(self.day, self.news)


def _padded(line: str) -> str:
    # Padded in UTF-8 bytes, so that the encoded bodies are as long as each other.
    return line + " " * (_WIDTH - len(line.encode()))


def body(day: str, news: bool) -> str:
    en, fr = _STATUS[news]
    return _BODY.format(day=day, status_en=_padded(en), status_fr=_padded(fr))


def due(store: DigestStore, today: str) -> list[Digest]:
    """The mails still to send today, in name order, each decided the same way
    (one query per journalist whatever the answer). Journalists whose digest
    already went out today (or on a later day: a clock set back) get none."""
    yesterday = (datetime.date.fromisoformat(today) - datetime.timedelta(days=1)).isoformat()
    digests = []
    for sub in store.digest_subscriptions():
        if sub.last_sent_on is not None and sub.last_sent_on >= today:
            continue
        since = sub.last_sent_on or yesterday
        digests.append(Digest(sub, today, store.received_since(since, sub.journalist_id)))
    return digests


def _check_lengths() -> None:
    if len(SUBJECTS[True]) != len(SUBJECTS[False]):
        raise AssertionError("the digest's two subjects differ in length")
    if len(body("2026-01-01", True).encode()) != len(body("2026-01-01", False).encode()):
        raise AssertionError("the digest's two bodies differ in length")


_check_lengths()
