/** The patient chart: banner with allergy alert, record sections, labs, imaging timeline. */
import { useEffect, useState, type ReactNode } from "react";
import { ShowMore } from "./ShowMore";
import { fetchChart, type Chart } from "../api/chart";
import { ageFrom, conceptText, formatDate, nameText, type CodeableConcept, type Resource } from "../api/fhir";
import { DocumentList } from "./Documents";
import { LabResults } from "./LabResults";
import { Link } from "./router";
import { ImagingTimeline } from "./Timeline";

type Load = { state: "loading" } | { state: "done"; chart: Chart } | { state: "error"; message: string };

export function ChartPage({ patientId }: { patientId: string }) {
  const [load, setLoad] = useState<Load>({ state: "loading" });
  useEffect(() => {
    const controller = new AbortController();
    setLoad({ state: "loading" });
    fetchChart(patientId, controller.signal)
      .then((chart) => setLoad({ state: "done", chart }))
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setLoad({ state: "error", message: error instanceof Error ? error.message : String(error) });
      });
    return () => controller.abort();
  }, [patientId]);

  if (load.state === "loading") {
    return (
      <main className="page" data-testid="chart" data-ready="false" aria-busy="true">
        <p>Loading the chart…</p>
      </main>
    );
  }
  if (load.state === "error") {
    return (
      <main className="page" data-testid="chart" data-ready="false" data-error="true">
        <p role="alert" className="error">
          {load.message}
        </p>
        <Link href="/">Back to patients and studies</Link>
      </main>
    );
  }
  const { chart } = load;
  const section = (name: string): Resource[] => chart.sections[name] ?? [];
  const display = (resource: Resource): string => referenceDisplay(resource, chart.referenced);
  return (
    <main className="page chart" data-testid="chart" data-ready="true" data-patient={patientId}>
      <Banner chart={chart} />
      {chart.truncated && (
        <p role="status" className="warning">
          This chart is very large: only part of the record is shown. Use FHIR search for the rest.
        </p>
      )}
      <div className="chart-grid">
        <Section title="Imaging" id="imaging" wide count={chart.timeline.length}>
          <ImagingTimeline entries={chart.timeline} />
        </Section>
        <Section title="Problems" id="problems" count={section("problems").length}>
          <Items items={section("problems")} render={(r) => ({
            main: conceptText(r.code as CodeableConcept),
            detail: [conceptText(r.clinicalStatus as CodeableConcept), onset(r)].filter(Boolean).join(" · "),
            inactive: isInactive(r.clinicalStatus as CodeableConcept),
          })} />
        </Section>
        <Section title="Medications" id="medications" count={section("medications").length}>
          <Items items={section("medications")} render={(r) => ({
            main: display(r),
            detail: [String(r.status ?? ""), dosage(r), formatDate((r.authoredOn ?? r.effectiveDateTime) as string | undefined)].filter(Boolean).join(" · "),
            inactive: ["stopped", "completed", "cancelled", "entered-in-error"].includes(String(r.status)),
          })} />
        </Section>
        <Section title="Allergies and intolerances" id="allergies" count={section("allergies").length}>
          <Items items={section("allergies")} empty="No allergies recorded." render={(r) => ({
            main: conceptText(r.code as CodeableConcept),
            detail: [r.criticality ? `criticality ${String(r.criticality)}` : "", reactions(r), conceptText(r.verificationStatus as CodeableConcept)].filter(Boolean).join(" · "),
            alert: r.criticality === "high",
            inactive: isInactive(r.clinicalStatus as CodeableConcept),
          })} />
        </Section>
        <Section title="Immunizations" id="immunizations" count={section("immunizations").length}>
          <Items items={section("immunizations")} render={(r) => ({
            main: conceptText(r.vaccineCode as CodeableConcept),
            detail: [formatDate(r.occurrenceDateTime as string | undefined), String(r.status ?? "")].filter(Boolean).join(" · "),
            inactive: r.status === "not-done",
          })} />
        </Section>
        <Section title="Lab results" id="labs" wide count={section("labs").length}>
          <LabResults observations={section("labs")} label="Lab results" />
        </Section>
        {section("vitals").length > 0 && (
          <Section title="Vital signs" id="vitals" wide count={section("vitals").length}>
            <LabResults observations={section("vitals")} label="Vital signs" />
          </Section>
        )}
        <Section title="Care plans" id="care-plans" count={section("carePlans").length}>
          <Items items={section("carePlans")} render={(r) => ({
            main: String(r.title ?? "") || conceptText(r.category as CodeableConcept[]) || String(r.description ?? "Care plan"),
            detail: [String(r.status ?? ""), period(r.period)].filter(Boolean).join(" · "),
            inactive: ["completed", "revoked", "entered-in-error"].includes(String(r.status)),
          })} />
        </Section>
        <Section title="Encounters" id="encounters" count={section("encounters").length}>
          <Items items={section("encounters")} render={(r) => ({
            main: conceptText(r.type as CodeableConcept[]) || String((r.class as { display?: string; code?: string } | undefined)?.display ?? (r.class as { code?: string } | undefined)?.code ?? "Encounter"),
            detail: [period(r.period), conceptText(r.reasonCode as CodeableConcept[]), String(r.status ?? "")].filter(Boolean).join(" · "),
          })} />
        </Section>
        <Section title="Documents" id="documents" count={section("documents").length}>
          <DocumentList documents={section("documents")} />
        </Section>
        {section("procedures").length > 0 && (
          <Section title="Procedures" id="procedures" count={section("procedures").length}>
            <Items items={section("procedures")} render={(r) => ({
              main: conceptText(r.code as CodeableConcept),
              detail: [formatDate((r.performedDateTime ?? (r.performedPeriod as { start?: string } | undefined)?.start) as string | undefined), String(r.status ?? "")].filter(Boolean).join(" · "),
            })} />
          </Section>
        )}
      </div>
    </main>
  );
}

function Banner({ chart }: { chart: Chart }) {
  const { patient } = chart;
  const allergies = (chart.sections.allergies ?? []).filter((a) => !isInactive(a.clinicalStatus as CodeableConcept) && conceptText(a.verificationStatus as CodeableConcept).toLowerCase() !== "refuted");
  const mrn = patient.identifier?.find((i) => i.type?.coding?.some((c) => c.code === "MR")) ?? patient.identifier?.[0];
  return (
    <header className="banner" aria-label="Patient">
      <div className="banner-who">
        <h1>{nameText(patient.name)}</h1>
        <dl className="banner-facts">
          <div>
            <dt>Born</dt>
            <dd>
              {formatDate(patient.birthDate) || "unknown"} {ageFrom(patient.birthDate) && `(${ageFrom(patient.birthDate)})`}
            </dd>
          </div>
          <div>
            <dt>Sex</dt>
            <dd>{patient.gender ?? "unknown"}</dd>
          </div>
          {mrn?.value && (
            <div>
              <dt>{mrn.type ? conceptText(mrn.type) || "ID" : "ID"}</dt>
              <dd>{mrn.value}</dd>
            </div>
          )}
          {(patient.deceasedBoolean || patient.deceasedDateTime) && (
            <div>
              <dt>Deceased</dt>
              <dd>{formatDate(patient.deceasedDateTime) || "yes"}</dd>
            </div>
          )}
        </dl>
      </div>
      {allergies.length > 0 ? (
        <div className="allergy-alert" role="alert" data-testid="allergy-alert">
          <strong>Allergies:</strong> {allergies.map((a) => conceptText(a.code as CodeableConcept) + (a.criticality === "high" ? " (high)" : "")).join(", ")}
        </div>
      ) : (
        <div className="allergy-none" data-testid="allergy-alert" data-none="true">
          No allergies recorded
        </div>
      )}
    </header>
  );
}

function Section({ title, id, count, wide, children }: { title: string; id: string; count: number; wide?: boolean; children: ReactNode }) {
  return (
    <section className={wide ? "card wide" : "card"} aria-labelledby={`${id}-title`} data-testid={`section-${id}`}>
      <h2 id={`${id}-title`}>
        {title} <span className="count">{count}</span>
      </h2>
      {children}
    </section>
  );
}

interface ItemView {
  main: string;
  detail?: string;
  alert?: boolean;
  inactive?: boolean;
}

function Items({ items, render, empty = "None recorded." }: { items: Resource[]; render: (r: Resource) => ItemView; empty?: string }) {
  if (items.length === 0) return <p className="muted">{empty}</p>;
  return (
    <ShowMore total={items.length} limit={6}>
      {(shown) => (
    <ul className="items">
      {items.slice(0, shown).map((item) => {
        const view = render(item);
        return (
          <li key={`${item.resourceType}/${item.id}`} className={[view.alert ? "alert" : "", view.inactive ? "inactive" : ""].join(" ").trim() || undefined}>
            <span className="item-main">{view.main || "(not coded)"}</span>
            {view.detail && <span className="item-detail">{view.detail}</span>}
          </li>
        );
      })}
    </ul>
      )}
    </ShowMore>
  );
}

function isInactive(status: CodeableConcept | undefined): boolean {
  const code = status?.coding?.[0]?.code;
  return code === "inactive" || code === "resolved" || code === "remission";
}

function onset(resource: Resource): string {
  const date = (resource.onsetDateTime ?? (resource.onsetPeriod as { start?: string } | undefined)?.start ?? resource.recordedDate) as string | undefined;
  return date ? `since ${formatDate(date)}` : "";
}

function period(value: unknown): string {
  const p = value as { start?: string; end?: string } | undefined;
  if (!p?.start && !p?.end) return "";
  return p.end ? `${formatDate(p.start)} – ${formatDate(p.end)}` : `from ${formatDate(p.start)}`;
}

function reactions(resource: Resource): string {
  const list = (resource.reaction as { manifestation?: CodeableConcept[] }[] | undefined) ?? [];
  return list.flatMap((r) => (r.manifestation ?? []).map((m) => conceptText(m))).filter(Boolean).join(", ");
}

function dosage(resource: Resource): string {
  const list = ((resource.dosageInstruction ?? resource.dosage) as { text?: string }[] | undefined) ?? [];
  return list.map((d) => d.text).filter(Boolean).join("; ");
}

/** A medication's name, from its code or the Medication it refers to. */
function referenceDisplay(resource: Resource, referenced: Record<string, Resource>): string {
  const concept = resource.medicationCodeableConcept as CodeableConcept | undefined;
  if (concept) return conceptText(concept);
  const reference = resource.medicationReference as { reference?: string; display?: string } | undefined;
  if (reference?.display) return reference.display;
  const target = reference?.reference ? referenced[reference.reference] : undefined;
  return target ? conceptText(target.code as CodeableConcept) : "(medication)";
}
