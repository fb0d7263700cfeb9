"""One Vesalius installation's services, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass

from vesalius.archive.factory import build_archive
from vesalius.database.engine import make_engines
from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.network.registry import AERegistry
from vesalius.worklist.service import WorklistService


@dataclass
class Node:
    settings: Settings
    archive: ArchiveService
    registry: AERegistry
    worklist: WorklistService


def build_node(settings: Settings) -> Node:
    reader, writer = make_engines(settings)
    return Node(settings, build_archive(settings, engines=(reader, writer)),
                AERegistry(writer), WorklistService(writer))
