"""Walking the audit chain and naming what is wrong with it.

Each problem names a sequence number and one of these kinds:

- ``edited``: the row at that sequence fails its MAC but still links into the chain (its
  ``previous`` is its predecessor's MAC, or its successor's ``previous`` is its MAC); also a
  row that verifies but differs from a signed checkpoint of that sequence (history
  rewritten by someone holding the chain key);
- ``deleted``: sequence numbers missing between two rows (the first missing one is named);
- ``inserted``: a row that fails its MAC and links to neither neighbour, a second row with
  the same sequence, or an authentic row that does not chain to its authentic predecessor;
- ``truncated``: rows missing after the last one although a signed checkpoint (or the head
  row) says the log was longer (the first missing sequence is named);
- ``checkpoint-forged``: a checkpoint file whose signature does not verify (it is ignored).

What cannot be detected: an attacker who holds the database *and* the chain key can rewrite
any history after the last signed checkpoint, and a tail deleted together with the head row
update after the last checkpoint leaves no trace. Checkpoints signed with a key kept off the
database host (and verified against a copy of its public key kept elsewhere) bound both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby

from vesalius.security.audit.chain import GENESIS, ChainedRecord, authentic
from vesalius.security.audit.checkpoints import CheckpointFile
from vesalius.security.audit.keys import AuditKey

KINDS = ("edited", "deleted", "inserted", "truncated", "checkpoint-forged")


@dataclass(frozen=True)
class Problem:
    kind: str
    sequence: int
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at sequence {self.sequence}: {self.detail}"


def _span(first: int, last: int) -> str:
    return f"sequence {first}" if first == last else f"sequences {first}-{last}"


def _with_next(groups: Iterator[list[ChainedRecord]]
               ) -> Iterator[tuple[list[ChainedRecord], list[ChainedRecord]]]:
    """Each group with the one after it (empty after the last)."""
    current = next(groups, None)
    while current is not None:
        following = next(groups, None)
        yield current, following or []
        current = following


def verify_chain(entries: Iterable[ChainedRecord], key: AuditKey,
                 checkpoints: Sequence[CheckpointFile], head: int | None) -> list[Problem]:
    """Every problem with ``entries`` (in sequence order), given the signed ``checkpoints``
    and the ``head`` sequence the database claims."""
    problems: list[Problem] = []
    signed: dict[int, str] = {}
    for found in checkpoints:
        if found.checkpoint is None:
            problems.append(Problem("checkpoint-forged", found.sequence,
                                    f"{found.path.name}: {found.problem}"))
        else:
            signed[found.sequence] = found.checkpoint.mac

    expected = 1
    # The MAC the next row must name as ``previous``; None once a problem makes it unknown.
    link: str | None = GENESIS
    groups = (list(group) for _, group in groupby(entries, key=lambda e: e.sequence))
    for group, following in _with_next(groups):
        sequence = group[0].sequence
        if sequence < expected:
            problems.extend(Problem("inserted", e.sequence, "sequence before the first entry")
                            for e in group)
            continue
        if sequence > expected:
            problems.append(Problem("deleted", expected,
                                    f"{_span(expected, sequence - 1)} missing"))
            link = None
        genuine = [e for e in group if authentic(key, e)]
        forged = [e for e in group if not authentic(key, e)]
        next_link: str | None = genuine[0].mac if genuine else None
        for extra in genuine[1:]:
            problems.append(Problem("inserted", sequence, f"second authentic row ({extra.mac})"))
        if genuine and forged:
            problems.extend(Problem("inserted", sequence,
                                    "a second row with this sequence; its MAC does not verify")
                            for _ in forged)
        elif len(forged) > 1:
            problems.extend(Problem("inserted", sequence,
                                    f"{len(forged)} rows with this sequence, none authentic")
                            for _ in forged)
        elif forged:
            row = forged[0]
            linked_from = any(f.previous == row.mac for f in following)
            if (link is not None and row.previous == link) or linked_from:
                problems.append(Problem("edited", sequence, "the row does not match its MAC"))
                next_link = row.mac if linked_from else None
            else:
                problems.append(Problem("inserted", sequence,
                                        "the row neither verifies nor chains to its neighbours"))
        if genuine:
            first = genuine[0]
            if link is not None and first.previous != link:
                problems.append(Problem("inserted", sequence,
                                        f"does not chain to sequence {sequence - 1}"))
            if sequence in signed and signed[sequence] != first.mac:
                problems.append(Problem("edited", sequence,
                                        "the row differs from the signed checkpoint"))
                next_link = None
        link = next_link
        expected = sequence + 1

    last = expected - 1
    claims = [(s, "a signed checkpoint") for s in signed if s > last]
    if head is not None and head > last:
        claims.append((head, "the head row"))
    if claims:
        reach, source = max(claims)
        problems.append(Problem("truncated", last + 1,
                                f"{_span(last + 1, reach)} missing after the last row; "
                                f"{source} says the log reached {reach}"))
    return problems
