/** GET /api/patients/{id}/chart: the record sections and imaging timeline in one read. */
import { authFetch } from "../auth/session";
import { failure, type Patient, type Resource } from "./fhir";

export interface TimelineEntry {
  kind: "imaging-study" | "photo";
  id: string;
  studyInstanceUid?: string;
  date: string | null;
  modalities: (string | null)[];
  description: string | null;
  numberOfSeries?: number | null;
  numberOfInstances?: number | null;
  contentType?: string | null;
  thumbnail: string | null;
  report: { id: string; status: string; conclusion?: string | null } | null;
}

export interface Chart {
  patient: Patient;
  sections: Partial<Record<string, Resource[]>>;
  timeline: TimelineEntry[];
  referenced: Record<string, Resource>;
  truncated: boolean;
}

export async function fetchChart(patientId: string, signal?: AbortSignal): Promise<Chart> {
  const response = await authFetch(`${window.location.origin}/api/patients/${encodeURIComponent(patientId)}/chart`, {
    headers: { Accept: "application/json" },
    signal,
  });
  if (!response.ok) throw await failure(response, "The chart could not be loaded");
  return (await response.json()) as Chart;
}
