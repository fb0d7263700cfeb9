/**
 * The study as the viewer needs it, read from this server's DICOMweb root (PS3.18):
 * QIDO-RS for the study and its series, WADO-RS series /metadata for the instances, and
 * `wadors:` image ids (one per frame) whose pixel data the DICOM image loader fetches.
 * Every request carries the user's bearer token (authFetch / the loader's beforeSend).
 */
import { metaData } from "@cornerstonejs/core";
import { wadors } from "@cornerstonejs/dicom-image-loader";
import dcmjs from "dcmjs";
import { authFetch } from "../auth/session";

export const DICOMWEB_ROOT = `${window.location.origin}/dicom-web`;

/** One attribute of the DICOM JSON model (PS3.18 F.2). */
export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type JsonDataset = Record<string, JsonAttribute>;

export function first(dataset: JsonDataset | undefined, tag: string): unknown {
  return dataset?.[tag]?.Value?.[0];
}

export function text(dataset: JsonDataset | undefined, tag: string): string {
  const value = first(dataset, tag);
  if (value === undefined || value === null) return "";
  if (typeof value === "object" && "Alphabetic" in (value as Record<string, unknown>)) {
    return String((value as Record<string, unknown>).Alphabetic ?? "");
  }
  return String(value);
}

function numbers(dataset: JsonDataset | undefined, tag: string): number[] {
  return (dataset?.[tag]?.Value ?? []).map(Number);
}

export interface StudyInfo {
  studyUid: string;
  patientName: string;
  patientId: string;
  studyDate: string;
  studyTime: string;
  description: string;
  modalities: string[];
}

export interface SeriesInfo {
  seriesUid: string;
  modality: string;
  description: string;
  number: number;
  instances: number;
}

/** A displayable image series: its frames in display order. */
export interface ImageSeries {
  studyUid: string;
  series: SeriesInfo;
  imageIds: string[];
  /** Multi-frame (cine) when one instance holds every frame. */
  multiFrame: boolean;
  /** Frames per second from the instance (FrameTime / CineRate), when given. */
  frameRate: number | null;
  /** Geometry usable for a volume: same orientation, equally spaced, more than a few slices. */
  reconstructable: boolean;
  rows: number;
  columns: number;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await authFetch(url, { headers: { Accept: "application/dicom+json" } });
  if (response.status === 204) return [] as T;
  if (!response.ok) throw new Error(`${response.status} ${response.statusText} for ${new URL(url).pathname}`);
  return (await response.json()) as T;
}

function studyFrom(dataset: JsonDataset): StudyInfo {
  return {
    studyUid: text(dataset, "0020000D"),
    patientName: text(dataset, "00100010").replace(/\^/g, " ").trim(),
    patientId: text(dataset, "00100020"),
    studyDate: text(dataset, "00080020"),
    studyTime: text(dataset, "00080030"),
    description: text(dataset, "00081030"),
    modalities: (dataset["00080061"]?.Value ?? []).map(String),
  };
}

const STUDY_FIELDS = ["00100010", "00100020", "00080020", "00080030", "00081030", "00080061"].join(",");

export async function fetchStudy(studyUid: string): Promise<StudyInfo> {
  const found = await getJson<JsonDataset[]>(
    `${DICOMWEB_ROOT}/studies?StudyInstanceUID=${encodeURIComponent(studyUid)}&includefield=${STUDY_FIELDS}`,
  );
  if (found.length === 0) throw new Error("Study not found (or not yours to see).");
  return studyFrom(found[0]);
}

export async function fetchSeries(studyUid: string): Promise<SeriesInfo[]> {
  const found = await getJson<JsonDataset[]>(`${DICOMWEB_ROOT}/studies/${studyUid}/series`);
  return found
    .map((dataset) => ({
      seriesUid: text(dataset, "0020000E"),
      modality: text(dataset, "00080060"),
      description: text(dataset, "0008103E"),
      number: Number(first(dataset, "00200011") ?? 0),
      instances: Number(first(dataset, "00201209") ?? 0),
    }))
    .sort((a, b) => a.number - b.number);
}

/**
 * The most recent earlier study of the same patient with `modality` (the shown series'):
 * one QIDO-RS `studies?PatientID=…&ModalitiesInStudy=…`, whose answer already carries the
 * study's attributes (the server returns only studies the user may see).
 */
export async function findPrior(current: StudyInfo, modality: string): Promise<StudyInfo | null> {
  if (!current.patientId || !modality) return null;
  const when = (study: StudyInfo): string => `${study.studyDate}${study.studyTime}`;
  const found = await getJson<JsonDataset[]>(
    `${DICOMWEB_ROOT}/studies?PatientID=${encodeURIComponent(current.patientId)}` +
      `&ModalitiesInStudy=${encodeURIComponent(modality)}&includefield=${STUDY_FIELDS}`,
  );
  const older = found
    .map(studyFrom)
    .filter((study) => study.studyUid !== current.studyUid && when(study) < when(current))
    .sort((a, b) => when(b).localeCompare(when(a)));
  return older[0] ?? null;
}

export const NON_IMAGE_MODALITIES = new Set(["SR", "KO", "PR", "SEG", "RTSTRUCT", "DOC", "REG"]);

/** Naturalized instances (dcmjs) by image id, for the SR adapters' 'instance' lookups. */
const naturalized = new Map<string, Record<string, unknown>>();
let providerAdded = false;

function addInstanceProvider(): void {
  if (providerAdded) return;
  providerAdded = true;
  metaData.addProvider((type: string, imageId: string) => {
    if (type === "instance") return naturalized.get(imageId);
    return undefined;
  }, 10000);
}

const metadataBySeries = new Map<string, Promise<JsonDataset[]>>();

export function fetchSeriesMetadata(studyUid: string, seriesUid: string): Promise<JsonDataset[]> {
  const key = `${studyUid}/${seriesUid}`;
  let pending = metadataBySeries.get(key);
  if (!pending) {
    pending = getJson<JsonDataset[]>(`${DICOMWEB_ROOT}/studies/${studyUid}/series/${seriesUid}/metadata`);
    pending.catch(() => metadataBySeries.delete(key));
    metadataBySeries.set(key, pending);
  }
  return pending;
}

function dot(a: number[], b: number[]): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function normalOf(orientation: number[]): number[] {
  const [r0, r1, r2, c0, c1, c2] = orientation;
  return [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
}

/** Image ids of a series in display order, registered with the loader's metadata store. */
export async function loadImageSeries(studyUid: string, series: SeriesInfo): Promise<ImageSeries> {
  addInstanceProvider();
  const instances = (await fetchSeriesMetadata(studyUid, series.seriesUid)).filter(
    (dataset) => first(dataset, "00280010") !== undefined,
  );
  const orientation = numbers(instances[0], "00200037");
  const normal = orientation.length === 6 ? normalOf(orientation) : null;
  const position = (dataset: JsonDataset): number | null => {
    const ipp = numbers(dataset, "00200032");
    return normal && ipp.length === 3 ? dot(ipp, normal) : null;
  };
  const sorted = [...instances].sort((a, b) => {
    const pa = position(a);
    const pb = position(b);
    if (pa !== null && pb !== null && pa !== pb) return pa - pb;
    return Number(first(a, "00200013") ?? 0) - Number(first(b, "00200013") ?? 0);
  });
  const imageIds: string[] = [];
  for (const dataset of sorted) {
    const sopUid = text(dataset, "00080018");
    const frames = Math.max(1, Number(first(dataset, "00280008") ?? 1));
    const base = `wadors:${DICOMWEB_ROOT}/studies/${studyUid}/series/${series.seriesUid}/instances/${sopUid}/frames/`;
    const instance = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dataset) as Record<string, unknown>;
    for (let frame = 1; frame <= frames; frame += 1) {
      const imageId = `${base}${frame}`;
      wadors.metaDataManager.add(imageId, dataset as never);
      naturalized.set(imageId, instance);
      imageIds.push(imageId);
    }
  }
  const multiFrame = sorted.length === 1 && imageIds.length > 1;
  const frameTime = Number(first(sorted[0], "00181063") ?? 0);
  const cineRate = Number(first(sorted[0], "00180040") ?? 0);
  const frameRate = frameTime > 0 ? 1000 / frameTime : cineRate > 0 ? cineRate : null;
  return {
    studyUid,
    series,
    imageIds,
    multiFrame,
    frameRate,
    reconstructable: !multiFrame && isReconstructable(sorted, normal, position),
    rows: Number(first(sorted[0], "00280010") ?? 0),
    columns: Number(first(sorted[0], "00280011") ?? 0),
  };
}

function isReconstructable(
  instances: JsonDataset[],
  normal: number[] | null,
  position: (dataset: JsonDataset) => number | null,
): boolean {
  if (!normal || instances.length < 3) return false;
  const reference = numbers(instances[0], "00200037").join("\\");
  if (instances.some((dataset) => numbers(dataset, "00200037").join("\\") !== reference)) return false;
  const positions = instances.map(position);
  if (positions.some((p) => p === null)) return false;
  const steps = (positions as number[]).slice(1).map((p, i) => p - (positions[i] as number));
  const step = steps[0];
  return step > 0 && steps.every((s) => Math.abs(s - step) < Math.max(0.01, step * 0.05));
}

/** The series to show first: the image series with the most frames. */
export function mainSeries(series: SeriesInfo[]): SeriesInfo | undefined {
  return series
    .filter((s) => !NON_IMAGE_MODALITIES.has(s.modality))
    .sort((a, b) => b.instances - a.instances)[0];
}

/** STOW-RS one Part 10 instance into a study (PS3.18 10.5): multipart/related; type="application/dicom". */
export async function storeInstance(studyUid: string, part10: ArrayBuffer): Promise<void> {
  const boundary = `vesalius-${crypto.randomUUID()}`;
  const head = new TextEncoder().encode(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
  const tail = new TextEncoder().encode(`\r\n--${boundary}--\r\n`);
  const body = new Blob([head, part10, tail]);
  const response = await authFetch(`${DICOMWEB_ROOT}/studies/${studyUid}`, {
    method: "POST",
    headers: {
      "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`,
      Accept: "application/dicom+json",
    },
    body,
  });
  if (!response.ok) {
    // PS3.18 10.5.3: Failed SOP Sequence items carry a Failure Reason; this server adds an Error Comment.
    const reasons: string[] = [];
    try {
      const body = (await response.json()) as JsonDataset;
      for (const item of (body["00081198"]?.Value ?? []) as JsonDataset[]) {
        reasons.push(`${text(item, "00000902") || "failure"} (0x${Number(first(item, "00081197") ?? 0).toString(16).toUpperCase()})`);
      }
    } catch {
      /* not a DICOM JSON answer */
    }
    throw new Error(`STOW-RS answered ${response.status}${reasons.length ? `: ${reasons.join("; ")}` : ""}`);
  }
}

/** Forget cached series metadata (after a STOW into the study). */
export function forgetSeriesMetadata(studyUid: string): void {
  for (const key of [...metadataBySeries.keys()]) if (key.startsWith(`${studyUid}/`)) metadataBySeries.delete(key);
}
