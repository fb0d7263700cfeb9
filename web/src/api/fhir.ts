/** FHIR R4 through /fhir with the user's token (the server applies the user's permissions). */
import { authFetch } from "../auth/session";

export type Resource = { resourceType: string; id?: string } & Record<string, unknown>;

export interface Coding {
  system?: string;
  code?: string;
  display?: string;
}
export interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}
export interface HumanName {
  use?: string;
  text?: string;
  family?: string;
  given?: string[];
  prefix?: string[];
}
export interface Identifier {
  system?: string;
  value?: string;
  type?: CodeableConcept;
}
export interface Patient extends Resource {
  resourceType: "Patient";
  id: string;
  name?: HumanName[];
  identifier?: Identifier[];
  birthDate?: string;
  gender?: string;
  deceasedBoolean?: boolean;
  deceasedDateTime?: string;
}

export const FHIR_BASE = `${window.location.origin}/fhir`;

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The message of an OperationOutcome (or the status line) of a failed answer. */
export async function failure(response: Response, what: string): Promise<ApiError> {
  let detail = response.statusText;
  try {
    const body = (await response.json()) as { issue?: { diagnostics?: string; details?: { text?: string } }[]; error_description?: string };
    detail = body.issue?.[0]?.diagnostics ?? body.issue?.[0]?.details?.text ?? body.error_description ?? detail;
  } catch {
    /* not JSON: keep the status text */
  }
  const prefix = response.status === 403 ? "Not permitted" : response.status === 404 ? "Not found" : `Error ${response.status}`;
  return new ApiError(`${what}: ${prefix}${detail ? ` (${detail})` : ""}`, response.status);
}

export async function fhirGet<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await authFetch(`${FHIR_BASE}/${path}`, { headers: { Accept: "application/fhir+json" }, signal });
  if (!response.ok) throw await failure(response, "FHIR request failed");
  return (await response.json()) as T;
}

export interface PatientQuery {
  name?: string;
  identifier?: string;
  birthdate?: string;
}

/** Patient?name=…&identifier=…&birthdate=… (empty criteria left out). */
export async function searchPatients(query: PatientQuery, signal?: AbortSignal): Promise<{ patients: Patient[]; more: boolean }> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    const text = (value ?? "").trim();
    if (text) params.append(key, text);
  }
  params.set("_count", "25");
  params.set("_sort", "family");
  const bundle = await fhirGet<{ entry?: { resource?: Resource; search?: { mode?: string } }[]; link?: { relation: string }[] }>(
    `Patient?${params.toString()}`,
    signal,
  );
  const patients = (bundle.entry ?? [])
    .filter((e) => e.resource?.resourceType === "Patient" && e.search?.mode !== "include" && e.search?.mode !== "outcome")
    .map((e) => e.resource as Patient);
  return { patients, more: (bundle.link ?? []).some((l) => l.relation === "next") };
}

/** The first Patient whose identifier value matches (any system), for a DICOM PatientID. */
export async function patientByIdentifier(value: string): Promise<Patient | null> {
  const bundle = await fhirGet<{ entry?: { resource?: Resource }[] }>(`Patient?identifier=${encodeURIComponent(value)}&_count=2`);
  const found = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is Patient => r?.resourceType === "Patient");
  return found.length === 1 ? found[0] : null;
}

// --- display helpers -----------------------------------------------------------------------

export function conceptText(concept: CodeableConcept | CodeableConcept[] | undefined | null): string {
  const one = Array.isArray(concept) ? concept[0] : concept;
  if (!one) return "";
  return one.text ?? one.coding?.find((c) => c.display)?.display ?? one.coding?.find((c) => c.code)?.code ?? "";
}

export function nameText(names: HumanName[] | undefined): string {
  const name = names?.find((n) => n.use === "official") ?? names?.[0];
  if (!name) return "(no name)";
  if (name.text) return name.text;
  const given = (name.given ?? []).join(" ");
  return [name.family ? name.family.toUpperCase() : "", given].filter(Boolean).join(", ") || "(no name)";
}

/** A FHIR date/dateTime shown as the reader's locale would, keeping its precision. */
export function formatDate(value: string | undefined | null, withTime = false): string {
  if (!value) return "";
  if (/^\d{4}$/.test(value)) return value;
  if (/^\d{4}-\d{2}$/.test(value)) {
    return new Date(`${value}-01T00:00:00`).toLocaleDateString(undefined, { year: "numeric", month: "short" });
  }
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const date = new Date(dateOnly ? `${value}T00:00:00` : value);
  if (Number.isNaN(date.getTime())) return value;
  return withTime && !dateOnly
    ? date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })
    : date.toLocaleDateString(undefined, { dateStyle: "medium" });
}

export function ageFrom(birthDate: string | undefined, now = new Date()): string {
  if (!birthDate || !/^\d{4}-\d{2}-\d{2}/.test(birthDate)) return "";
  const born = new Date(`${birthDate.slice(0, 10)}T00:00:00`);
  let years = now.getFullYear() - born.getFullYear();
  const before = now.getMonth() < born.getMonth() || (now.getMonth() === born.getMonth() && now.getDate() < born.getDate());
  if (before) years -= 1;
  return years >= 2 ? `${years} y` : `${Math.max(0, Math.floor((now.getTime() - born.getTime()) / (30.44 * 86400000)))} mo`;
}
