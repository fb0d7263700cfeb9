"""The Patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html) with the
resources it references, as used by Patient/$everything
(https://hl7.org/fhir/R4/patient-operation-everything.html): one counting query and one page
query, whatever the number of resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, and_, case, false, func, or_, select, union

from vesalius.record.schema import resources
from vesalius.record.search.tables import reference_index


def compartment_page(conn: Connection, compartment: Mapping[str, Sequence[str]], patient_id: str,
                     *, types: Sequence[str] | None, since: datetime | None, count: int,
                     offset: int, restrict: ColumnElement[bool] | None
                     ) -> tuple[list[str], int]:
    """Contents of a page of the Patient, its compartment members (live resources whose
    compartment parameters reference ``Patient/<patient_id>``) and what the Patient and those
    members reference, ordered Patient first, then by type and key; and the total."""
    member_ref, member = reference_index.alias(), resources.alias()
    members = (select(member_ref.c.resource_pk.label("pk"))
               .join(member, member.c.pk == member_ref.c.resource_pk)
               .where(member_ref.c.target_type == "Patient",
                      member_ref.c.target_id == patient_id,
                      member.c.deleted == false(),
                      or_(*(and_(member_ref.c.resource_type == t, member_ref.c.name.in_(names))
                            for t, names in compartment.items()))))
    patient = select(resources.c.pk.label("pk")).where(resources.c.resource_type == "Patient",
                                                       resources.c.id == patient_id)
    out_ref, target = reference_index.alias(), resources.alias()
    referenced = (select(target.c.pk.label("pk"))
                  .select_from(out_ref.join(target, and_(
                      target.c.resource_type == out_ref.c.target_type,
                      target.c.id == out_ref.c.target_id)))
                  .where(or_(out_ref.c.resource_pk.in_(members.with_only_columns(
                      member_ref.c.resource_pk)), out_ref.c.resource_pk.in_(patient))))
    everything = union(patient, members, referenced).subquery()
    where: list[ColumnElement[bool]] = [resources.c.pk.in_(select(everything.c.pk)),
                                        resources.c.deleted == false()]
    if types:
        where.append(resources.c.resource_type.in_(list(types)))
    if since is not None:
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        where.append(resources.c.last_updated >= aware.astimezone(UTC))
    if restrict is not None:
        where.append(restrict)
    total = conn.execute(select(func.count()).select_from(resources).where(*where)).scalar_one()
    is_patient = and_(resources.c.resource_type == "Patient", resources.c.id == patient_id)
    query = (select(resources.c.content).where(*where)
             .order_by(case((is_patient, 0), else_=1), resources.c.resource_type,
                       resources.c.pk)
             .limit(count).offset(offset))
    return [row.content for row in conn.execute(query)], int(total)
