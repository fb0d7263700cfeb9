/** DICOMweb (QIDO-RS) through /dicom-web with the user's token. */
import { authFetch } from "../auth/session";
import { failure } from "./fhir";

export const DICOMWEB_ROOT = `${window.location.origin}/dicom-web`;

type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

export interface StudySummary {
  studyInstanceUid: string;
  date: string; // ISO yyyy-mm-dd or ""
  time: string;
  description: string;
  modalities: string[];
  patientName: string;
  patientId: string;
  accessionNumber: string;
  numberOfInstances: number | null;
}

function first(item: DicomJson, tag: string): unknown {
  return item[tag]?.Value?.[0];
}

function text(item: DicomJson, tag: string): string {
  const value = first(item, tag);
  if (value === undefined || value === null) return "";
  if (typeof value === "object" && "Alphabetic" in (value as Record<string, unknown>)) {
    return String((value as { Alphabetic?: string }).Alphabetic ?? "").replace(/\^+/g, " ").trim();
  }
  return String(value);
}

function isoDate(da: string): string {
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : "";
}

const STUDY_FIELDS = ["00080020", "00080030", "00080050", "00080061", "00081030", "00100010", "00100020", "00201208"];

/** The most recent studies, newest first (the worklist on the home page). */
export async function recentStudies(limit = 25, signal?: AbortSignal): Promise<StudySummary[]> {
  const params = new URLSearchParams({ limit: String(limit) });
  for (const tag of STUDY_FIELDS) params.append("includefield", tag);
  const response = await authFetch(`${DICOMWEB_ROOT}/studies?${params.toString()}`, {
    headers: { Accept: "application/dicom+json" },
    signal,
  });
  if (response.status === 204) return [];
  if (!response.ok) throw await failure(response, "Study search failed");
  const items = (await response.json()) as DicomJson[];
  const studies = items.map((item) => ({
    studyInstanceUid: text(item, "0020000D"),
    date: isoDate(text(item, "00080020")),
    time: text(item, "00080030"),
    description: text(item, "00081030"),
    modalities: (item["00080061"]?.Value ?? []).map(String),
    patientName: text(item, "00100010"),
    patientId: text(item, "00100020"),
    accessionNumber: text(item, "00080050"),
    numberOfInstances: typeof first(item, "00201208") === "number" ? (first(item, "00201208") as number) : null,
  }));
  return studies.sort((a, b) => `${b.date}${b.time}`.localeCompare(`${a.date}${a.time}`));
}
