"""The pure access decisions: DICOM associations, roles, SMART scopes narrowing them, patient
access, policy files."""

from __future__ import annotations

from pathlib import Path

import pytest

from vesalius.core.errors import InvalidInput
from vesalius.security.policy import DEFAULT_POLICY, DimseCaller, load_policy, may_dimse
from vesalius.security.principal import AE, CLIENT, SYSTEM_PRINCIPAL, USER, Principal

UNKNOWN = DimseCaller("ANY", "10.0.0.1", None)
READER = DimseCaller("READER", "127.0.0.1", frozenset({"find", "get"}))


@pytest.mark.parametrize(("caller", "action", "allowed"), [
    (UNKNOWN, "echo", True),
    (UNKNOWN, "store", True),
    (UNKNOWN, "commit", True),
    (UNKNOWN, "find", False),
    (UNKNOWN, "mwl", False),
    (UNKNOWN, "mpps", False),
    (UNKNOWN, "move", False),
    (READER, "find", True),
    (READER, "mpps", True),
    (READER, "get", True),
    (READER, "store", False),
    (READER, "move", False),
])
def test_dimse_decisions(caller: DimseCaller, action: str, allowed: bool) -> None:
    assert may_dimse(caller, action, ("store",)) is allowed


def test_unknown_callers_follow_the_configured_default() -> None:
    assert may_dimse(UNKNOWN, "find", ("store", "find"))
    assert not may_dimse(UNKNOWN, "store", ())


def user(*roles: str, scopes: tuple[str, ...] = (), **kw: str) -> Principal:
    return Principal(kind=USER, id="u", roles=frozenset(roles), scopes=frozenset(scopes), **kw)


def test_default_roles_grant_what_the_role_needs_and_nothing_else() -> None:
    allowed = DEFAULT_POLICY.resource_allowed
    assert allowed(user("clinician"), "Observation", "c")
    assert allowed(user("nurse"), "Observation", "u")
    assert not allowed(user("nurse"), "Condition", "u")
    assert allowed(user("registration"), "Patient", "c")
    assert not allowed(user("registration"), "Observation", "r")
    assert not allowed(user("administrator"), "Observation", "r")
    assert allowed(user("administrator"), "Practitioner", "u")
    assert not allowed(user("auditor"), "Patient", "r")
    assert allowed(user("patient", patient="p1"), "Observation", "s")
    assert not allowed(user("patient", patient="p1"), "Observation", "c")
    assert not allowed(user(), "Observation", "r")  # no role, nothing


def test_scopes_only_narrow_the_role() -> None:
    allowed = DEFAULT_POLICY.resource_allowed
    reader = user("clinician", scopes=("openid", "user/Observation.rs"))
    assert allowed(reader, "Observation", "r")
    assert not allowed(reader, "Observation", "c")
    assert not allowed(reader, "Condition", "r")
    # a scope cannot widen a role: a nurse with user/*.cruds still may not write conditions
    assert not allowed(user("nurse", scopes=("user/*.cruds",)), "Condition", "c")
    assert allowed(user("clinician", scopes=("user/*.read",)), "Condition", "s")  # SMART v1
    # malformed scopes grant nothing
    assert not allowed(user("clinician", scopes=("user/Observation.xyz",)), "Observation", "r")


def test_backend_clients_get_exactly_their_system_scopes() -> None:
    client = Principal(kind=CLIENT, id="c", scopes=frozenset({"system/Observation.rs"}))
    assert DEFAULT_POLICY.resource_allowed(client, "Observation", "r")
    assert not DEFAULT_POLICY.resource_allowed(client, "Observation", "c")
    assert not DEFAULT_POLICY.resource_allowed(client, "Patient", "r")
    assert DEFAULT_POLICY.patient_access(client) == "all"
    assert DEFAULT_POLICY.image_allowed(
        Principal(kind=CLIENT, id="c", scopes=frozenset({"system/ImagingStudy.r"})), "view")
    assert not DEFAULT_POLICY.image_allowed(client, "view")
    user_scoped = Principal(kind=CLIENT, id="c", scopes=frozenset({"user/*.cruds"}))
    assert not DEFAULT_POLICY.resource_allowed(user_scoped, "Observation", "r")
    assert DEFAULT_POLICY.patient_access(user_scoped) == "none"


def test_images_follow_role_and_the_imaging_study_scope() -> None:
    assert DEFAULT_POLICY.image_allowed(user("radiologist"), "download")
    assert not DEFAULT_POLICY.image_allowed(user("nurse"), "download")
    assert not DEFAULT_POLICY.image_allowed(user("clinician"), "delete")
    assert DEFAULT_POLICY.image_allowed(user("administrator"), "delete")
    narrowed = user("radiologist", scopes=("user/ImagingStudy.rs",))
    assert DEFAULT_POLICY.image_allowed(narrowed, "view")
    assert not DEFAULT_POLICY.image_allowed(narrowed, "upload")
    with pytest.raises(ValueError):
        DEFAULT_POLICY.image_allowed(user("radiologist"), "print")


def test_patient_access_and_patient_context() -> None:
    access = DEFAULT_POLICY.patient_access
    assert access(user("clinician")) == "care"
    assert access(user("radiologist")) == "all"
    assert access(user("clinician", "radiologist")) == "all"  # the widest of the roles
    assert access(user("external")) == "consent"
    assert access(user("auditor")) == "none"
    assert access(user("patient", patient="p1")) == "self"
    # a SMART patient-context token confines even an organisation-wide role
    assert access(user("radiologist", scopes=("patient/*.rs",), patient="p1")) == "self"
    assert access(SYSTEM_PRINCIPAL) == "all"
    assert access(Principal(kind=AE, id="CT1")) == "all"
    assert not DEFAULT_POLICY.resource_allowed(Principal(kind=AE, id="CT1"), "Patient", "r")


def test_functions() -> None:
    assert DEFAULT_POLICY.may_use(user("auditor"), "audit.read")
    assert not DEFAULT_POLICY.may_use(user("clinician"), "audit.read")
    assert DEFAULT_POLICY.may_use(user("clinician"), "break-glass")
    assert not DEFAULT_POLICY.may_use(user("registration"), "break-glass")
    assert DEFAULT_POLICY.may_use(user("registration"), "patient.merge")
    with pytest.raises(ValueError):
        DEFAULT_POLICY.may_use(user("auditor"), "launch-missiles")


def test_policy_file_overrides_and_adds_roles(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[roles.nurse]\nimages = ["view", "download"]\n'
                    '[roles.research]\npatient_access = "consent"\n'
                    'resources = { Observation = "rs" }\n', encoding="utf-8")
    policy = load_policy(str(path))
    assert policy.image_allowed(user("nurse"), "download")
    assert policy.resource_allowed(user("nurse"), "Observation", "u")  # other keys kept
    assert policy.resource_allowed(user("research"), "Observation", "r")
    assert not policy.resource_allowed(user("research"), "Condition", "r")
    assert policy.patient_access(user("research")) == "consent"
    assert load_policy("") is DEFAULT_POLICY


@pytest.mark.parametrize("text", [
    "[roles.nurse]\npatient_access = \"everyone\"\n",
    "[roles.nurse]\nimages = [\"print\"]\n",
    "[roles.nurse]\nfunctions = [\"root\"]\n",
    "[roles.nurse]\nresources = { Observation = \"rwx\" }\n",
    "[roles.nurse]\ncolour = \"blue\"\n",
    "[roles]\nnurse = 3\n",
    "[other]\nx = 1\n",
    "[roles.nurse\n",
    "\x00\x01",
])
def test_bad_policy_files_are_refused_with_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_policy(str(path))


def test_a_missing_policy_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        load_policy(str(tmp_path / "absent.toml"))
