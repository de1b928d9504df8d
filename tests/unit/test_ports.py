"""The store's port is seven areas and their union; services name the areas they touch.

mypy holds each service's body to the ports in its signature; these tests hold the ports
themselves to their shape: every Store method in exactly one area, ``Store`` adding nothing of
its own, the per-service stores only composing areas, and no service taking the whole store or
defining a port of its own.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Protocol

import pytest

from shared.ports import (
    ActivityIndexStore,
    CrmStore,
    ListingStore,
    MailboxStore,
    MailStore,
    ProposalStore,
    RelationshipStore,
    SettingsStore,
    Store,
    UserStore,
    service_stores,
)
from shared.ports.store import STORE_AREAS

SERVICES = Path(__file__).resolve().parents[2] / "shared" / "services"
AREAS = (
    UserStore,
    MailboxStore,
    CrmStore,
    MailStore,
    ActivityIndexStore,
    ProposalStore,
    SettingsStore,
    ListingStore,
    RelationshipStore,
)


def own_methods(cls: type) -> set[str]:
    """The public methods a class body defines itself (not what it inherits)."""
    return {name for name, value in vars(cls).items() if callable(value) and name[0] != "_"}


def members(cls: type) -> set[str]:
    """Every public method of a class, inherited ones included."""
    return {name for name in dir(cls) if name[0] != "_" and callable(getattr(cls, name))}


class TestStoreAreas:
    def test_the_seven_areas_are_the_ones_store_lists(self) -> None:
        assert STORE_AREAS == AREAS

    def test_every_store_method_belongs_to_exactly_one_area(self) -> None:
        owners = Counter(name for area in AREAS for name in own_methods(area))
        assert members(Store) == set(owners)
        assert {name: n for name, n in owners.items() if n != 1} == {}

    def test_store_is_exactly_the_union_of_its_areas(self) -> None:
        assert tuple(b for b in Store.__bases__ if b is not Protocol) == AREAS
        assert own_methods(Store) == set()
        assert members(Store) == set().union(*(members(area) for area in AREAS))

    @pytest.mark.parametrize("area", AREAS, ids=lambda a: a.__name__)
    def test_every_area_is_a_protocol_of_its_own_methods(self, area: type) -> None:
        assert getattr(area, "_is_protocol", False)
        assert [b for b in area.__bases__ if b is not Protocol] == []
        assert own_methods(area) and members(area) == own_methods(area)


class TestServiceStores:
    def test_each_service_store_only_composes_areas(self) -> None:
        composed = [
            value
            for value in vars(service_stores).values()
            if isinstance(value, type) and value.__module__ == service_stores.__name__
        ]
        assert composed
        for cls in composed:
            bases = [b for b in cls.__bases__ if b is not Protocol]
            assert getattr(cls, "_is_protocol", False), cls.__name__
            assert len(bases) >= 2 and set(bases) <= set(AREAS), cls.__name__
            assert own_methods(cls) == set(), cls.__name__


def _service_modules() -> list[Path]:
    return sorted(p for p in SERVICES.glob("*.py") if p.name != "__init__.py")


class TestServicesTakeNarrowPorts:
    def test_no_service_annotates_anything_with_the_whole_store(self) -> None:
        wide = []
        for path in _service_modules():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                annotations = []
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    arguments = node.args
                    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
                    annotations = [a.annotation for a in every if a.annotation is not None]
                elif isinstance(node, ast.AnnAssign):
                    annotations = [node.annotation]
                for annotation in annotations:
                    names = {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}
                    if "Store" in names:
                        wide.append(f"{path.name}:{annotation.lineno}")
        assert wide == []

    def test_no_service_defines_a_port_of_its_own(self) -> None:
        defined = []
        for path in _service_modules():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = {ast.unparse(b) for b in node.bases}
                    if bases & {"Protocol", "typing.Protocol"}:
                        defined.append(f"{path.name}:{node.name}")
        assert defined == []
